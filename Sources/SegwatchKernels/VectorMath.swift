// The kernels in this module are compiled three times: as `SegwatchKernels` for any x86-64 and,
// from the same files (symlinks), as `SegwatchKernelsAVX2` for x86-64-v3 with SEGWATCH_AVX2
// defined, and as `SegwatchKernelsAVX512` for x86-64-v4 with SEGWATCH_AVX512 defined as well.
// `SegwatchTensor` picks one set at run time from the CPU's features. Nothing here calls libm:
// every lane, tails included, goes through the same vector code, so both builds agree with
// themselves element for element.

#if SEGWATCH_AVX512
/// Sixteen-lane float math for the kernels' inner loops: one AVX-512 register.
typealias Vector = SIMD16<Float>
typealias IntVector = SIMD16<Int32>
#else
/// Eight-lane float math for the kernels' inner loops: two SSE registers on baseline x86-64,
/// one AVX register on x86-64-v3.
typealias Vector = SIMD8<Float>
typealias IntVector = SIMD8<Int32>
#endif

extension UnsafePointer<Float> {
    @inline(__always) func vector(at i: Int) -> Vector { UnsafeRawPointer(self + i).loadUnaligned(as: Vector.self) }

    /// The `lanes` floats from `i`; when fewer than a vector, the other lanes are `padding`.
    @inline(__always) func vector(at i: Int, lanes: Int, padding: Float = 0) -> Vector {
        if lanes == Vector.scalarCount { return vector(at: i) }
        var v = Vector(repeating: padding)
        for lane in 0..<lanes { v[lane] = self[i + lane] }
        return v
    }
}

extension UnsafeMutablePointer<Float> {
    @inline(__always) func vector(at i: Int) -> Vector { UnsafePointer(self).vector(at: i) }
    @inline(__always) func vector(at i: Int, lanes: Int, padding: Float = 0) -> Vector {
        UnsafePointer(self).vector(at: i, lanes: lanes, padding: padding)
    }
    @inline(__always) func store(_ v: Vector, at i: Int) { UnsafeMutableRawPointer(self + i).storeBytes(of: v, as: Vector.self) }

    /// Stores the first `lanes` lanes of `v` from `i`.
    @inline(__always) func store(_ v: Vector, at i: Int, lanes: Int) {
        if lanes == Vector.scalarCount { return store(v, at: i) }
        for lane in 0..<lanes { self[i + lane] = v[lane] }
    }
}

#if SEGWATCH_AVX2
/// `a * b + c`, one fused instruction on x86-64-v3.
@inline(__always) func muladd(_ a: Vector, _ b: Vector, _ c: Vector) -> Vector { c.addingProduct(a, b) }
#else
/// `a * b + c` in two roundings: without FMA in the target, `addingProduct` would be a libm
/// call per lane.
@inline(__always) func muladd(_ a: Vector, _ b: Vector, _ c: Vector) -> Vector { a * b + c }
#endif

@inline(__always) func muladd(_ a: Vector, _ b: Vector, _ c: Float) -> Vector { muladd(a, b, Vector(repeating: c)) }
@inline(__always) func muladd(_ a: Vector, _ b: Float, _ c: Vector) -> Vector { muladd(a, Vector(repeating: b), c) }

/// `e^x` per lane, within 2 ulp of `expf` over the float range (Cephes' `expf` polynomial
/// after splitting off a power of two). Below -87.3 it returns 0, above 88.7 infinity.
@inline(__always)
func exp(_ x: Vector) -> Vector {
    let low = Vector(repeating: -87.33654), high = Vector(repeating: 88.72283)
    let clamped = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
    // Round x * log2(e) to the nearest integer n with the 1.5 * 2^23 trick; n sits in the low
    // mantissa bits of `shifted`.
    let magic: Float = 12_582_912
    let shifted = clamped * 1.442_695_04 + magic
    let n = shifted - magic
    var r = clamped - n * 0.693_359_375
    r = r + n * 2.121_944_4e-4
    var p = muladd(r, 1.987_569_15e-4, Vector(repeating: 1.398_199_95e-3))
    p = muladd(p, r, 8.333_451_9e-3)
    p = muladd(p, r, 4.166_579_59e-2)
    p = muladd(p, r, 1.666_666_55e-1)
    p = muladd(p, r, 5.000_000_1e-1)
    p = muladd(p * r, r, r + 1)
    // 2^n from n's bits, (n + 127) << 23, in two halves: n reaches 128 and -126, where one
    // power alone would overflow or fall into the denormals.
    let n1 = (unsafeBitCast(shifted, to: IntVector.self) &- 0x4B40_0000)
    let half = n1 &>> 1
    let first = unsafeBitCast((half &+ 127) &<< 23, to: Vector.self)
    let second = unsafeBitCast((n1 &- half &+ 127) &<< 23, to: Vector.self)
    var result = p * first * second
    result.replace(with: 0, where: x .< -87.33654)
    result.replace(with: .infinity, where: x .> 88.72283)
    return result
}

/// `erf(x)` per lane: the odd/even rational approximation on [-4, 4] that Eigen and XLA use
/// for float (outside that range erf is ±1 in float).
@inline(__always)
func erf(_ x: Vector) -> Vector {
    let four = Vector(repeating: 4)
    let x = x.replacing(with: four, where: x .> four).replacing(with: -four, where: x .< -four)
    let x2 = x * x
    var p = muladd(x2, -2.726_142_258_013_06e-10, Vector(repeating: 2.770_681_424_959_02e-08))
    p = muladd(p, x2, -2.101_024_020_825_08e-06)
    p = muladd(p, x2, -5.692_506_394_623_46e-05)
    p = muladd(p, x2, -7.349_906_303_268_55e-04)
    p = muladd(p, x2, -2.954_599_808_540_25e-03)
    p = muladd(p, x2, -1.609_603_332_624_15e-02)
    p = p * x
    var q = muladd(x2, -1.456_607_184_649_96e-05, Vector(repeating: -2.133_740_552_789_05e-04))
    q = muladd(q, x2, -1.682_826_974_382_03e-03)
    q = muladd(q, x2, -7.373_329_167_204_68e-03)
    q = muladd(q, x2, -1.426_473_905_141_89e-02)
    return p / q
}
