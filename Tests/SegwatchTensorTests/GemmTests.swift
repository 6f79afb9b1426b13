@testable import SegwatchTensor
import SegwatchTestSupport
import Testing

@Suite(.twoThreads) struct GemmTests {
    // Guards batched matmul with a broadcast batch dimension.
    @Test func matmulBroadcastsBatches() throws {
        try expectMatches(matmul(References.tensor("matmul.a"), References.tensor("matmul.b")), "matmul.out")
    }

    // Guards strided operands: transposed and sliced views go to BLAS without a copy and still
    // give the product of their values.
    @Test func matmulReadsTransposedAndStridedViews() throws {
        let a = try References.tensor("matmul.a"), b = try References.tensor("matmul.b")
        // b^T stored as [2,1,4,7], then viewed back as [2,1,7,4].
        let bT = b.permuted([0, 1, 3, 2]).contiguous().permuted([0, 1, 3, 2])
        try expectMatches(matmul(a, bT), "matmul.out")
        // a embedded in a wider tensor and sliced out: row stride 9, not 7.
        let wide = pad(a, [(0, 0), (0, 0), (0, 0), (1, 1)], value: .nan).sliced(3, 1..<8)
        try expectMatches(matmul(wide, b), "matmul.out")
    }

    @Test func linearAddsBias() throws {
        let x = try References.tensor("linear.x")
        let out = try linear(x, weight: References.tensor("linear.weight"), bias: References.tensor("linear.bias"))
        try expectMatches(out, "linear.out")
        // Without bias: the same minus the bias.
        let plain = try linear(x, weight: References.tensor("linear.weight"), bias: nil)
        try expectMatches(try add(plain, References.tensor("linear.bias")), "linear.out")
    }

    // The residual is where the product accumulates: with and without bias, it must equal the
    // separate sum, and a strided residual must be read by its values.
    @Test func linearAddsAResidual() throws {
        let x = try References.tensor("linear.x"), weight = try References.tensor("linear.weight")
        let bias = try References.tensor("linear.bias")
        let shape = try References.tensor("linear.out").shape
        let residual = Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { Float($0 % 7) - 3.5 })
        try expectMatches(binary(linear(x, weight: weight, bias: bias, adding: residual), .subtract, residual), "linear.out")
        let separate = add(linear(x, weight: weight, bias: nil), residual)
        let fused = linear(x, weight: weight, bias: nil, adding: residual)
        #expect(compare(fused, separate, atol: 1e-5, name: "no bias").passed)
        let reversed = Array((0..<residual.rank).reversed())
        let strided = residual.permuted(reversed).contiguous().permuted(reversed)
        try expectMatches(binary(linear(x, weight: weight, bias: bias, adding: strided), .subtract, residual), "linear.out")
        let empty = linear(Tensor(zeros: [2, 0]), weight: Tensor(zeros: [3, 0]), bias: nil, adding: Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
        #expect(empty.toArray() == [1, 2, 3, 4, 5, 6])
    }

    // Guards degenerate sizes: an empty inner dimension gives zeros (plus bias), not garbage.
    @Test func emptyInnerDimensionGivesZeros() {
        let out = matmul(Tensor(zeros: [3, 0]), Tensor(zeros: [0, 2]))
        #expect(out.shape == [3, 2] && out.toArray() == [0, 0, 0, 0, 0, 0])
        let biased = linear(Tensor(zeros: [2, 0]), weight: Tensor(zeros: [3, 0]), bias: Tensor(shape: [3], values: [1, 2, 3]))
        #expect(biased.toArray() == [1, 2, 3, 1, 2, 3])
    }

    // Guards the general product of every build this CPU runs (the AVX-512 tiles' own,
    // cgemm_sgemm_avx512, and OpenBLAS's):
    // each transpose of A and B, alpha, beta 0 and 1 (accumulating onto C), rows not a multiple
    // of 6, columns not of 16 and split into blocks of packed B (n 1000 at k 300), B read in
    // place by few rows (50 x 256, inputs in 2 blocks), and leading dimensions wider than the
    // rows; against a double-precision product of the same values.
    @Test(arguments: [(1, 1, 1), (7, 17, 5), (13, 70, 300), (50, 1000, 300), (50, 256, 1000), (100, 33, 1537)])
    func sgemmOfEveryBuildMatchesADoubleProduct(m: Int, n: Int, k: Int) {
        func values(_ count: Int, _ seed: Int) -> [Float] { (0..<count).map { Float((($0 &+ seed) &* 2654435761) % 2001) / 1000 - 1 } }
        let pad = 3
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            // Stored as op(A) = A or Aᵀ: [m, k] rows, or [k, m] rows; likewise B.
            let lda = (transposeA ? m : k) + pad, ldb = (transposeB ? k : n) + pad, ldc = n + pad
            let a = values((transposeA ? k : m) * lda, 1), b = values((transposeB ? n : k) * ldb, 2), start = values(m * ldc, 3)
            func aAt(_ i: Int, _ p: Int) -> Double { Double(transposeA ? a[p * lda + i] : a[i * lda + p]) }
            func bAt(_ p: Int, _ j: Int) -> Double { Double(transposeB ? b[j * ldb + p] : b[p * ldb + j]) }
            for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1)] {
                for build in [nil] + KernelSet.supported.compactMap(\.product).filter({ $0 == .avx512 }) {
                    var c = start
                    a.withUnsafeBufferPointer { a in
                        b.withUnsafeBufferPointer { b in
                            c.withUnsafeMutableBufferPointer { c in
                                sgemm(m: m, n: n, k: k, alpha: alpha, a: a.baseAddress!, lda: lda, transposeA: transposeA,
                                      b: b.baseAddress!, ldb: ldb, transposeB: transposeB, beta: beta, c: c.baseAddress!, ldc: ldc, build: build)
                            }
                        }
                    }
                    var worst: (error: Double, at: Int) = (0, 0)
                    for i in 0..<m {
                        for j in 0..<ldc {
                            let at = i * ldc + j
                            guard j < n else {
                                #expect(c[at] == start[at], "\(build.map { "\($0)" } ?? "openblas") wrote past column \(n)")
                                continue
                            }
                            var (sum, size) = (Double(beta) * Double(start[at]), abs(Double(beta) * Double(start[at])))
                            for p in 0..<k {
                                let term = Double(alpha) * aAt(i, p) * bAt(p, j)
                                (sum, size) = (sum + term, size + abs(term))
                            }
                            let error = abs(Double(c[at]) - sum) / (size * 4e-6 + 1e-6)
                            if error > worst.error { worst = (error, at) }
                        }
                    }
                    #expect(worst.error <= 1, "\(build.map { "\($0)" } ?? "openblas") m \(m) n \(n) k \(k) transposes \(transposeA) \(transposeB) alpha \(alpha) beta \(beta): element \(worst.at) off by \(worst.error) bounds")
                }
            }
        }
    }

    // `--precision bfloat16`'s `matmul`: the double product of the operands rounded to bfloat16,
    // within the float32 bound, at the product's edges (odd inputs, a lone last pair, 2 and 3
    // blocks of pairs, partial panels and rows, B in several blocks of columns), batched and
    // broadcast; not the unrounded product; and a transposed operand (a view that is one)
    // stays float32.
    @Test(.enabled(if: cpuRunsBFloat16, "this CPU has no AVX512_BF16"),
          arguments: [(1, 1, 1), (7, 17, 5), (13, 70, 301), (50, 1000, 300), (61, 256, 1537), (4096, 56, 56)])
    func bfloat16MatmulMatchesADoubleProductOfRoundedValues(m: Int, n: Int, k: Int) {
        func values(_ count: Int, _ seed: Int) -> [Float] { (0..<count).map { Float((($0 &+ seed) &* 2654435761) % 2001) / 1000 - 1 } }
        let a = Tensor(shape: [2, m, k], values: values(2 * m * k, 1)), b = Tensor(shape: [k, n], values: values(k * n, 2))
        let (x, y) = (a.toArray(), b.toArray())
        let out = matmul(a, b.reshaped([1, k, n]).expanded([2, k, n]), bfloat16: true).toArray()
        var worst = 0.0, differs = false
        for item in 0..<2 {
            for i in 0..<m {
                for j in 0..<n {
                    var (rounded, unrounded, size) = (0.0, 0.0, 0.0)
                    for p in 0..<k {
                        let (u, v) = (x[(item * m + i) * k + p], y[p * n + j])
                        rounded += Double(bfloat16(u)) * Double(bfloat16(v))
                        unrounded += Double(u) * Double(v)
                        size += abs(Double(u) * Double(v))
                    }
                    let got = Double(out[(item * m + i) * n + j]), bound = size * 4e-6 + 1e-6
                    worst = max(worst, abs(got - rounded) / bound)
                    differs = differs || abs(got - unrounded) > bound
                }
            }
        }
        #expect(worst <= 1, "[\(m), \(k)] x [\(k), \(n)]: the worst element is \(worst) times its bound")
        #expect(differs || k < 2, "the product was not rounded to bfloat16")
        let rows = Tensor(shape: [m, k], values: Array(x.prefix(m * k))), columns = Tensor(shape: [n, k], values: values(n * k, 3)).permuted([1, 0])
        if n > 1 && k > 1 { #expect(matmul(rows, columns, bfloat16: true).toArray() == matmul(rows, columns).toArray()) }
    }
}
