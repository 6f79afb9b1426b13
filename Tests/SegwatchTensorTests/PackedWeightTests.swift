import CGemm
import Glibc
@testable import SegwatchTensor
import SegwatchTestSupport
import Testing

/// The products on weights packed at load (AVX2, AVX-512), against a double-precision product
/// of the same values: edges of every block (rows not a multiple of 6, outputs not of 16 or 64,
/// inputs split into 2 and 3 blocks), bias and residual, and each threading path.
@Suite(.twoThreads) struct PackedWeightTests {
    static var packs: Bool { cpuKernelSet != "x86-64" && getenv("SEGWATCH_GEMM") == nil }
    /// The product builds this CPU runs.
    static let builds = KernelSet.supported.compactMap(\.product)

    private func values(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { Float((($0 &+ seed) &* 2654435761) % 2001) / 1000 - 1 }
    }

    /// `x weightᵀ + bias + residual` in double precision, and the bound on float rounding:
    /// a few ulps of the sum of the terms' magnitudes.
    private func reference(_ x: [Float], _ weight: [Float], _ bias: [Float]?, _ residual: [Float]?,
                           m: Int, n: Int, k: Int) -> (values: [Float], bounds: [Float]) {
        var values = [Float](repeating: 0, count: m * n), bounds = values
        for i in 0..<m {
            for j in 0..<n {
                var sum = Double(bias?[j] ?? 0) + Double(residual?[i * n + j] ?? 0)
                var magnitude = abs(Double(bias?[j] ?? 0)) + abs(Double(residual?[i * n + j] ?? 0))
                for p in 0..<k {
                    let term = Double(x[i * k + p]) * Double(weight[j * k + p])
                    sum += term
                    magnitude += abs(term)
                }
                values[i * n + j] = Float(sum)
                bounds[i * n + j] = Float(magnitude * 4e-6 + 1e-6)
            }
        }
        return (values, bounds)
    }

    // (m, k, n): one row and one output; 6-row and 16-output edges; inputs in 2 blocks (1000)
    // and 3 (1537); a product split by panels (n 300) and one split by rows (n 20, 3000 rows).
    @Test(arguments: [(1, 16, 1), (5, 7, 17), (13, 100, 33), (61, 1000, 70), (7, 1537, 16),
                      (100, 800, 300), (3000, 64, 20)])
    func matchesADoubleProduct(m: Int, k: Int, n: Int) {
        let x = values(m * k, seed: 1), weight = values(n * k, seed: 2)
        let bias = values(n, seed: 3), residual = values(m * n, seed: 4)
        let packed = packedForLinear(Tensor(shape: [n, k], values: weight))
        if n * k >= 4096 { #expect((packed.packedWeight != nil) == Self.packs) }
        let input = Tensor(shape: [m, k], values: x), rest = Tensor(shape: [m, n], values: residual)
        let cases: [(String, Tensor?, Tensor?)] = [("plain", nil, nil), ("bias", Tensor(shape: [n], values: bias), nil),
                                                   ("bias + residual", Tensor(shape: [n], values: bias), rest),
                                                   ("residual", nil, rest)]
        for (name, b, r) in cases {
            let out = linear(input, weight: packed, bias: b, adding: r).toArray()
            let expected = reference(x, weight, b == nil ? nil : bias, r == nil ? nil : residual, m: m, n: n, k: k)
            let worst = out.indices.max { abs(out[$0] - expected.values[$0]) / expected.bounds[$0] < abs(out[$1] - expected.values[$1]) / expected.bounds[$1] }!
            #expect(abs(out[worst] - expected.values[worst]) <= expected.bounds[worst],
                    "\(name) [\(m), \(k)] x [\(n), \(k)]: element \(worst) is \(out[worst]), expected \(expected.values[worst])")
        }
    }

    // Each product build this CPU runs, called directly, on the same packed weight: each within
    // the double product's bound, and every build the same bits as the AVX2 one (the same sums
    // in the same order), fused activations included. Outputs 16 to 200 reach every width of
    // the AVX-512 tile (1 to 4 panels) and its masked columns.
    @Test(.enabled(if: !PackedWeightTests.builds.isEmpty, "no product build runs on this CPU"),
          arguments: [(5, 7, 17), (13, 1537, 33), (61, 1000, 70), (100, 800, 200), (6, 64, 64), (3000, 64, 20)])
    func everyBuildMatchesADoubleProduct(m: Int, k: Int, n: Int) {
        let x = values(m * k, seed: 21), plain = values(n * k, seed: 22), bias = values(n, seed: 23), residual = values(m * n, seed: 24)
        let weight = PackedWeight(Tensor(shape: [n, k], values: plain))
        let expected = reference(x, plain, bias, residual, m: m, n: n, k: k)
        for activation in [CGEMM_IDENTITY, CGEMM_GELU, CGEMM_QUICK_GELU] {
            let outputs = Self.builds.map { build in
                var out = [Float](repeating: 0, count: m * n)
                x.withUnsafeBufferPointer { a in
                    out.withUnsafeMutableBufferPointer { c in
                        packedProduct(m: m, a: a.baseAddress!, lda: k, weight, c: c.baseAddress!, ldc: n, bias: bias, residual: residual,
                                      activation: activation, build: build)
                    }
                }
                return out
            }
            for (build, out) in zip(Self.builds, outputs) {
                if activation == CGEMM_IDENTITY {
                    let worst = out.indices.max { abs(out[$0] - expected.values[$0]) / expected.bounds[$0] < abs(out[$1] - expected.values[$1]) / expected.bounds[$1] }!
                    #expect(abs(out[worst] - expected.values[worst]) <= expected.bounds[worst],
                            "\(build) [\(m), \(k)] x [\(n), \(k)]: element \(worst) is \(out[worst]), expected \(expected.values[worst])")
                }
                if let mismatch = out.indices.first(where: { out[$0].bitPattern != outputs[0][$0].bitPattern }) {
                    Issue.record("\(build) \(activation) [\(m), \(k)] x [\(n), \(k)]: element \(mismatch) is \(out[mismatch]), \(Self.builds[0]) gives \(outputs[0][mismatch])")
                }
            }
        }
    }

    // An activation fused into the product's store (GELU, quickGELU) equals the product followed
    // by the activation's own kernel: at partial panels and rows, with bias and residual, applied
    // once after the last of 3 blocks of inputs (not per block), and out to where quickGELU's
    // exponential overflows (outputs below -52).
    @Test(arguments: [(5, 7, 17, Float(1)), (13, 1537, 33, 1), (61, 1000, 70, 6), (3000, 64, 20, 1)])
    func fusedActivationMatchesItsKernel(m: Int, k: Int, n: Int, scale: Float) {
        let input = Tensor(shape: [m, k], values: values(m * k, seed: 11).map { $0 * scale })
        let weight = packedForLinear(Tensor(shape: [n, k], values: values(n * k, seed: 12)))
        let bias = Tensor(shape: [n], values: values(n, seed: 13)), rest = Tensor(shape: [m, n], values: values(m * n, seed: 14))
        for activation in [Activation.gelu, .quickGelu, .relu] {
            for residual in [nil, rest] {
                let fused = linear(input, weight: weight, bias: bias, adding: residual, activation: activation).toArray()
                let separate = activate(linear(input, weight: weight, bias: bias, adding: residual), activation).toArray()
                for i in fused.indices where !(abs(fused[i] - separate[i]) <= 1e-6 + 4e-6 * abs(separate[i])) {
                    Issue.record("\(activation) [\(m), \(k)] x [\(n), \(k)]: element \(i) is \(fused[i]), its kernel gives \(separate[i])")
                    break
                }
            }
        }
    }

    // The bfloat16 product (`--precision bfloat16`) is the float32 product of the weight and the
    // activations rounded to bfloat16: within the double product of the rounded values' bound,
    // at every edge (odd inputs, a lone last pair, 2 and 3 blocks of pairs, partial panels and
    // rows, each threading path), bias and residual included; and not the unrounded product.
    @Test(.enabled(if: cpuRunsBFloat16, "this CPU has no AVX512_BF16"),
          arguments: [(1, 16, 1), (5, 7, 17), (13, 1537, 33), (61, 1000, 70), (7, 3073, 16), (100, 800, 200), (3000, 64, 20)])
    func bfloat16MatchesADoubleProductOfRoundedValues(m: Int, k: Int, n: Int) {
        let x = values(m * k, seed: 31).map { $0 * 1.37 }, plain = values(n * k, seed: 32).map { $0 * 0.71 }
        let bias = values(n, seed: 33), residual = values(m * n, seed: 34)
        let weight = PackedWeight(Tensor(shape: [n, k], values: plain), bfloat16: true)
        let expected = reference(x.map(bfloat16), plain.map(bfloat16), bias, residual, m: m, n: n, k: k)
        let unrounded = reference(x, plain, bias, residual, m: m, n: n, k: k)
        var out = [Float](repeating: 0, count: m * n)
        x.withUnsafeBufferPointer { a in
            out.withUnsafeMutableBufferPointer { c in
                packedProduct(m: m, a: a.baseAddress!, lda: k, weight, c: c.baseAddress!, ldc: n, bias: bias, residual: residual)
            }
        }
        let worst = out.indices.max { abs(out[$0] - expected.values[$0]) / expected.bounds[$0] < abs(out[$1] - expected.values[$1]) / expected.bounds[$1] }!
        #expect(abs(out[worst] - expected.values[worst]) <= expected.bounds[worst],
                "[\(m), \(k)] x [\(n), \(k)]: element \(worst) is \(out[worst]), expected \(expected.values[worst])")
        #expect(out.indices.contains { abs(out[$0] - unrounded.values[$0]) > unrounded.bounds[$0] })
    }

    // A packed weight is the panels alone: the plain values go with the tensor they came in,
    // so a model does not hold its linear weights twice.
    @Test(.enabled(if: PackedWeightTests.packs, "weights are packed only with the AVX2 and AVX-512 kernels"))
    func packingKeepsNoPlainCopy() {
        weak var original: TensorStorage?
        var packed: Tensor
        do {
            let weight = Tensor(shape: [100, 70], values: values(7000, seed: 7))
            original = weight.storage
            packed = packedForLinear(weight)
        }
        #expect(original == nil)
        #expect(packed.storage.count == 112 * 70)  // 100 outputs padded to 7 panels of 16
        let x = values(3 * 70, seed: 8)
        let out = linear(Tensor(shape: [3, 70], values: x), weight: packed, bias: nil).toArray()
        let expected = reference(x, values(7000, seed: 7), nil, nil, m: 3, n: 100, k: 70)
        for i in out.indices { #expect(abs(out[i] - expected.values[i]) <= expected.bounds[i]) }
    }
}
