import Foundation
@testable import SegwatchKernels
@testable import SegwatchKernelsAVX2
@testable import SegwatchKernelsAVX512
@testable import SegwatchTensor
import Testing

/// One build of the kernels: the same source compiled for baseline x86-64, x86-64-v3 and
/// x86-64-v4. Every test runs on each build this CPU can execute, against double-precision
/// references: the kernel table SegwatchTensor dispatches through, plus the vector `exp` and
/// `erf` (on eight lanes; the AVX-512 build's sixteen are filled twice).
@dynamicMemberLookup
struct KernelBuild: Sendable, CustomStringConvertible {
    let kernels: KernelSet
    let exp, erf: @Sendable (SIMD8<Float>) -> SIMD8<Float>

    var description: String { kernels.name }

    subscript<T>(dynamicMember path: KeyPath<KernelSet, T>) -> T { kernels[keyPath: path] }

    static let all: [KernelBuild] = KernelSet.supported.map { set in
        switch set.product {
        case nil: KernelBuild(kernels: set, exp: SegwatchKernels.exp, erf: SegwatchKernels.erf)
        case .avx2: KernelBuild(kernels: set, exp: SegwatchKernelsAVX2.exp, erf: SegwatchKernelsAVX2.erf)
        case .avx512: KernelBuild(kernels: set, exp: { sixteen(SegwatchKernelsAVX512.exp, $0) }, erf: { sixteen(SegwatchKernelsAVX512.erf, $0) })
        }
    }

    /// `f` on sixteen lanes: `x` in both halves, each half's result checked to be the same.
    private static func sixteen(_ f: (SIMD16<Float>) -> SIMD16<Float>, _ x: SIMD8<Float>) -> SIMD8<Float> {
        let y = f(SIMD16(lowHalf: x, highHalf: x))
        precondition(y.lowHalf == y.highHalf || y.lowHalf.indices.contains { y.lowHalf[$0].isNaN },
                     "the AVX-512 build's lanes disagree: \(y)")
        return y.lowHalf
    }
}

/// Deterministic values in `-scale...scale`.
private func values(_ count: Int, seed: UInt64, scale: Float = 4) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
}

/// The sizes that reach every path: below one vector, whole vectors, and a tail after them.
private let sizes = [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 77, 1000]

struct VectorMathTests {
    /// The largest `error(vector result, exact)` over vectors of eight nearby points stepping
    /// through `range`.
    private func worstError(_ range: Range<Float>, step: Float, spread: Float, _ vector: (SIMD8<Float>) -> SIMD8<Float>,
                            exact: (Double) -> Double, error: (Double, Double) -> Double) -> Double {
        var worst: Double = 0
        var x = range.lowerBound
        while x < range.upperBound {
            var lanes = SIMD8<Float>()
            for lane in 0..<8 { lanes[lane] = x + Float(lane) * spread }
            let result = vector(lanes)
            for lane in 0..<8 { worst = max(worst, error(Double(result[lane]), exact(Double(lanes[lane])))) }
            x += step
        }
        return worst
    }

    // Guards the vector exp behind softmax, sigmoid and QuickGELU: within a few ulp of the
    // double-precision exp across the float range, 0 and infinity past it.
    @Test(arguments: KernelBuild.all)
    func vectorExpIsAccurate(build: KernelBuild) {
        let worst = worstError(-87..<88.5, step: 0.0173, spread: 0.0011, build.exp, exact: Foundation.exp) { abs($0 - $1) / $1 }
        #expect(worst < 3e-7, "max relative error \(worst)")
        let edges = build.exp(SIMD8(-200, -88, -87.3, 0, 1, 88.7, 89, .infinity))
        #expect(edges[0] == 0 && edges[1] == 0 && edges[3] == 1 && edges[6] == .infinity && edges[7] == .infinity)
        #expect(edges[2] > 0 && edges[5].isFinite)
        #expect(abs(edges[4] - 2.7182817) < 1e-6)
    }

    // Guards the vector erf behind GELU: within a few float ulp of erf everywhere.
    @Test(arguments: KernelBuild.all)
    func vectorErfIsAccurate(build: KernelBuild) {
        let worst = worstError(-6..<6, step: 0.0091, spread: 0.0007, build.erf, exact: Foundation.erf) { abs($0 - $1) }
        #expect(worst < 5e-7, "max absolute error \(worst)")
        #expect(build.erf(SIMD8(repeating: 0))[0] == 0 && abs(build.erf(SIMD8(repeating: 100))[0] - 1) < 2e-7)
    }
}

struct ActivationKernelTests {
    // Every element, the tail included, within float noise of the double-precision definition.
    @Test(arguments: KernelBuild.all)
    func activationsMatchTheirDefinitions(build: KernelBuild) {
        let cases: [(String, KernelSet.Unary, (Double) -> Double)] = [
            ("gelu", build.gelu, { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }),
            ("gelu_tanh", build.geluTanh, { 0.5 * $0 * (1 + tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }),
            ("quick_gelu", build.quickGelu, { $0 / (1 + Foundation.exp(-1.702 * $0)) }),
            ("sigmoid", build.sigmoid, { 1 / (1 + Foundation.exp(-$0)) }),
            ("relu", build.relu, { max($0, 0) }),
        ]
        for (name, kernel, exact) in cases {
            for count in sizes {
                let x = values(count, seed: UInt64(count), scale: 6)
                var y = [Float](repeating: .nan, count: count)
                kernel(x, &y, count)
                let worst = zip(x, y).map { abs(Double($1) - exact(Double($0))) / max(1, abs(exact(Double($0)))) }.max()!
                #expect(worst < 1e-6, "\(name) on \(count) elements: max error \(worst)")
            }
        }
    }

    // torch.relu keeps NaN; a max() would turn it into 0.
    @Test(arguments: KernelBuild.all)
    func reluKeepsNaN(build: KernelBuild) {
        var x: [Float] = [.nan, -1, 2, -.infinity, .infinity, -0.0, 0.5, .nan, -3]
        build.relu(x, &x, x.count)
        #expect(x[0].isNaN && x[7].isNaN && x[1] == 0 && x[2] == 2 && x[3] == 0 && x[4] == .infinity && x[8] == 0)
    }
}

struct SoftmaxKernelTests {
    @Test(arguments: KernelBuild.all)
    func softmaxRowsMatchTheDefinition(build: KernelBuild) {
        for width in sizes {
            var row = values(width, seed: 7 + UInt64(width), scale: 30)
            if width > 2 { row[width / 2] = -.infinity }
            let top = Double(row.max()!)
            let exps = row.map { Foundation.exp(Double($0) - top) }, sum = exps.reduce(0, +)
            build.softmaxRow(&row, width)
            let worst = zip(row, exps).map { abs(Double($0) - $1 / sum) }.max()!
            #expect(worst < 1e-6, "width \(width): max error \(worst)")
        }
    }

    // Many rows at once, narrow ones in chunks across row boundaries, are each row's softmax.
    @Test(arguments: KernelBuild.all)
    func softmaxOfManyRowsIsEachRows(build: KernelBuild) {
        // Values within +-30 take the path without maxima; within +-300, exp would overflow without them.
        for width in [1, 2, 7, 8, 9, 33] {
            for scale: Float in [30, 300] {
                let rows = 300
                var data = values(rows * width, seed: 11 + UInt64(width), scale: scale)
                data[width * 5 ..< width * 6] = ArraySlice(repeating: -.infinity, count: width)
                if width > 1 { data[width * 7 + 1] = -.infinity }
                var expected = data
                for r in 0..<rows { expected.withUnsafeMutableBufferPointer { build.softmaxRow($0.baseAddress! + r * width, width) } }
                build.softmaxRows(&data, rows, width)
                let worst = zip(data, expected).map { abs($0 - $1) }.max()!
                #expect(worst < 1e-6, "width \(width): max difference \(worst)")
                #expect(data[width * 5 ..< width * 6].allSatisfy { $0 == 0 }, "width \(width): a masked row")
                #expect(data.allSatisfy { $0.isFinite }, "width \(width), values within \(scale)")
            }
        }
    }

    // A fully masked row (every key after the query, in a causal mask of one) is zeros, not NaN.
    @Test(arguments: KernelBuild.all)
    func fullyMaskedRowIsZeros(build: KernelBuild) {
        for width in [1, 8, 13] {
            var row = [Float](repeating: -.infinity, count: width)
            build.softmaxRow(&row, width)
            #expect(row.allSatisfy { $0 == 0 }, "width \(width)")
        }
    }
}

struct NormalizationKernelTests {
    private func reference(_ x: ArraySlice<Float>, _ gamma: [Float], _ beta: [Float], eps: Double) -> [Double] {
        let mean = x.reduce(0.0) { $0 + Double($1) } / Double(x.count)
        let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(x.count)
        return x.enumerated().map { i, v in (Double(v) - mean) / (variance + eps).squareRoot() * Double(gamma[i]) + Double(beta[i]) }
    }

    // Rows of every width, one with a large mean (where a one-pass variance would cancel).
    @Test(arguments: KernelBuild.all)
    func layerNormRowsMatchTheDefinition(build: KernelBuild) {
        for width in sizes {
            for offset: Float in [0, 3000] {
                let x = values(width, seed: UInt64(width)).map { $0 + offset }
                let gamma = values(width, seed: 99), beta = values(width, seed: 98)
                var y = [Float](repeating: .nan, count: width)
                build.layerNormRow(x, &y, width, gamma, beta, 1e-5)
                let exact = reference(x[...], gamma, beta, eps: 1e-5)
                let worst = zip(y, exact).map { abs(Double($0) - $1) }.max()!
                // At a mean of 3000 the inputs themselves are only known to 2.4e-4.
                #expect(worst < (offset == 0 ? 2e-5 : 2e-3), "width \(width), offset \(offset): max error \(worst)")
            }
        }
    }

    // LayerNorm2d: each pixel normalized over channels lying `stride` apart; a stride wider than
    // the pixels normalized (a block of a plane) leaves the rest untouched.
    @Test(arguments: KernelBuild.all)
    func layerNormPixelsMatchesPerPixelRows(build: KernelBuild) {
        for (channels, count) in [(1, 5), (3, 1), (4, 8), (5, 17), (32, 40)] {
            let stride = count + 3
            let x = values(channels * stride, seed: UInt64(channels * 31 + count))
            let gamma = values(channels, seed: 5), beta = values(channels, seed: 6)
            var y = [Float](repeating: 1234, count: channels * stride)
            var scratch = [Float](repeating: 0, count: 2 * count)
            scratch.withUnsafeMutableBufferPointer { s in
                build.layerNormPixels(x, &y, channels, stride, count, gamma, beta, 1e-6, s.baseAddress!, s.baseAddress! + count)
            }
            for i in 0..<stride {
                let column = (0..<channels).map { x[$0 * stride + i] }
                let exact = reference(column[...], gamma, beta, eps: 1e-6)
                for c in 0..<channels {
                    let got = y[c * stride + i]
                    if i < count {
                        #expect(abs(Double(got) - exact[c]) < 2e-5, "channels \(channels), pixel \(i), channel \(c)")
                    } else {
                        #expect(got == 1234, "pixel \(i) lies outside the \(count) normalized")
                    }
                }
            }
        }
    }
}

struct DepthwiseKernelTests {
    /// The geometries checked: they reach the border, the 8- and 32-wide interior paths and the
    /// strided scalar path, inputs smaller than the kernel included.
    private static let geometries: [(height: Int, width: Int, kh: Int, kw: Int, stride: Int, padding: Int, dilation: Int)] = {
        var all: [(height: Int, width: Int, kh: Int, kw: Int, stride: Int, padding: Int, dilation: Int)] = []
        for (height, width) in [(1, 1), (2, 5), (9, 9), (5, 40), (7, 75)] {
            for (kh, kw) in [(1, 1), (3, 3), (5, 3)] {
                for (stride, padding, dilation) in [(1, 0, 1), (1, 1, 1), (2, 1, 1), (1, 2, 2), (3, 0, 1), (1, 4, 1)] {
                    all.append((height, width, kh, kw, stride, padding, dilation))
                }
            }
        }
        return all
    }()

    /// `bias + sum of filter * input` over the taps inside the input, in double precision.
    private static func reference(_ x: (Int, Int) -> Float, _ filter: (Int, Int) -> Float, bias: Float,
                                  _ g: (height: Int, width: Int, kh: Int, kw: Int, stride: Int, padding: Int, dilation: Int),
                                  oy: Int, ox: Int) -> Double {
        var sum = Double(bias)
        for ki in 0..<g.kh {
            for kj in 0..<g.kw {
                let iy = oy * g.stride - g.padding + ki * g.dilation, ix = ox * g.stride - g.padding + kj * g.dilation
                if iy >= 0 && iy < g.height && ix >= 0 && ix < g.width { sum += Double(filter(ki, kj)) * Double(x(iy, ix)) }
            }
        }
        return sum
    }

    @Test(arguments: KernelBuild.all)
    func depthwiseMatchesTheDefinition(build: KernelBuild) {
        var checked = 0
        for g in Self.geometries {
            let outH = (g.height + 2 * g.padding - g.dilation * (g.kh - 1) - 1) / g.stride + 1
            let outW = (g.width + 2 * g.padding - g.dilation * (g.kw - 1) - 1) / g.stride + 1
            guard outH > 0 && outW > 0 else { continue }
            let x = values(g.height * g.width, seed: UInt64(g.height * 100 + g.width))
            let filter = values(g.kh * g.kw, seed: UInt64(g.kh * 10 + g.kw))
            var y = [Float](repeating: .nan, count: outH * outW)
            let axis = (stride: g.stride, padding: g.padding, dilation: g.dilation)
            build.depthwiseConv2d(x, g.height, g.width, filter, g.kh, g.kw, axis, axis, 0.25, &y, outH, outW)
            var worst: Double = 0
            for oy in 0..<outH {
                for ox in 0..<outW {
                    let exact = Self.reference({ x[$0 * g.width + $1] }, { filter[$0 * g.kw + $1] }, bias: 0.25, g, oy: oy, ox: ox)
                    worst = max(worst, abs(Double(y[oy * outW + ox]) - exact))
                }
            }
            #expect(worst < 1e-5, "\(g): max error \(worst)")
            checked += 1
        }
        #expect(checked > 60)
    }

    // Channels-last: every channel count around the vector width, each channel its own filter
    // and bias, on the same geometries; only the requested output rows are written.
    @Test(arguments: KernelBuild.all)
    func channelsLastDepthwiseMatchesTheDefinition(build: KernelBuild) {
        for g in Self.geometries where g.height * g.width <= 81 {
            let outH = (g.height + 2 * g.padding - g.dilation * (g.kh - 1) - 1) / g.stride + 1
            let outW = (g.width + 2 * g.padding - g.dilation * (g.kw - 1) - 1) / g.stride + 1
            guard outH > 0 && outW > 0 else { continue }
            for channels in [1, 8, 13, 24] {
                let x = values(g.height * g.width * channels, seed: UInt64(g.height * 100 + g.width + channels))
                let filter = values(g.kh * g.kw * channels, seed: UInt64(g.kh * 10 + g.kw))
                let bias = values(channels, seed: 3)
                var y = [Float](repeating: .nan, count: outH * outW * channels)
                let axis = (stride: g.stride, padding: g.padding, dilation: g.dilation)
                let rows = outH / 2..<outH
                build.depthwiseConv2dChannelsLast(x, g.height, g.width, channels, filter, g.kh, g.kw, axis, axis, bias, &y, outW, rows)
                var worst: Double = 0
                for oy in 0..<outH {
                    for ox in 0..<outW {
                        for c in 0..<channels {
                            let got = y[(oy * outW + ox) * channels + c]
                            guard rows.contains(oy) else {
                                #expect(got.isNaN, "row \(oy) is outside the rows asked for")
                                continue
                            }
                            let exact = Self.reference({ x[($0 * g.width + $1) * channels + c] },
                                                       { filter[($0 * g.kw + $1) * channels + c] }, bias: bias[c], g, oy: oy, ox: ox)
                            worst = max(worst, abs(Double(got) - exact))
                        }
                    }
                }
                #expect(worst < 1e-5, "\(g), \(channels) channels: max error \(worst)")
            }
        }
    }
}

struct ElementwiseKernelTests {
    @Test(arguments: KernelBuild.all)
    func binaryAndAffineMatchTheirDefinitions(build: KernelBuild) {
        for count in sizes {
            let a = values(count, seed: 1), b = values(count, seed: 2).map { $0 + 5 }
            var y = [Float](repeating: .nan, count: count)
            build.add(a, b, &y, count)
            #expect(y == zip(a, b).map { $0 + $1 }, "add, \(count)")
            build.subtract(a, b, &y, count)
            #expect(y == zip(a, b).map { $0 - $1 }, "subtract, \(count)")
            build.multiply(a, b, &y, count)
            #expect(y == zip(a, b).map { $0 * $1 }, "multiply, \(count)")
            build.divide(a, b, &y, count)
            #expect(y == zip(a, b).map { $0 / $1 }, "divide, \(count)")
            build.affine(a, &y, count, 0.25, -3)
            #expect(y == a.map { $0 * 0.25 - 3 }, "affine, \(count)")
        }
    }
}
