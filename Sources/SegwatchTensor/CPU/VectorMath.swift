/// Eight-lane float math for the kernels' inner loops.
typealias Vector = SIMD8<Float>

extension UnsafePointer<Float> {
    @inline(__always) func vector(at i: Int) -> Vector { UnsafeRawPointer(self + i).loadUnaligned(as: Vector.self) }
}

extension UnsafeMutablePointer<Float> {
    @inline(__always) func vector(at i: Int) -> Vector { UnsafeRawPointer(self + i).loadUnaligned(as: Vector.self) }
    @inline(__always) func store(_ v: Vector, at i: Int) { UnsafeMutableRawPointer(self + i).storeBytes(of: v, as: Vector.self) }
}

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
    var p = Vector(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_1e-1
    p = p * r * r + r + 1
    // 2^n from n's bits, (n + 127) << 23, in two halves: n reaches 128 and -126, where one
    // power alone would overflow or fall into the denormals.
    let n1 = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000)
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
    var p = x2 * -2.726_142_258_013_06e-10 + 2.770_681_424_959_02e-08
    p = p * x2 - 2.101_024_020_825_08e-06
    p = p * x2 - 5.692_506_394_623_46e-05
    p = p * x2 - 7.349_906_303_268_55e-04
    p = p * x2 - 2.954_599_808_540_25e-03
    p = p * x2 - 1.609_603_332_624_15e-02
    p = p * x
    var q = x2 * -1.456_607_184_649_96e-05 - 2.133_740_552_789_05e-04
    q = q * x2 - 1.682_826_974_382_03e-03
    q = q * x2 - 7.373_329_167_204_68e-03
    q = q * x2 - 1.426_473_905_141_89e-02
    return p / q
}
