import Foundation
@testable import SegwatchTensor
import SegwatchTestSupport
import Testing

@Suite(.twoThreads) struct AttentionTests {
    private func qkv(_ prefix: String) throws -> (Tensor, Tensor, Tensor) {
        (try References.tensor("\(prefix).q"), try References.tensor("\(prefix).k"), try References.tensor("\(prefix).v"))
    }

    @Test func plainBiasedAndCausal() throws {
        let (q, k, v) = try qkv("attention")
        let scale = 1 / Float(8).squareRoot()
        try expectMatches(attention(q: q, k: k, v: v, .init(scale: scale)), "attention.out")
        try expectMatches(attention(q: q, k: k, v: v, .init(scale: scale, bias: References.tensor("attention.bias"))),
                          "attention.out_bias")
        try expectMatches(attention(q: q, k: k, v: v, .init(scale: scale, causal: true)), "attention.out_causal")
    }

    // Guards SAM's decomposed relative position on a 3x4 grid, with tables that fit and with
    // tables that must be resized.
    @Test(arguments: ["rel_pos", "rel_pos_resized"])
    func decomposedRelativePosition(case name: String) throws {
        let (q, k, v) = try qkv("rel_pos")
        let terms = try relativePositionBias(q: q, tableH: References.tensor("\(name).table_h"),
                                             tableW: References.tensor("\(name).table_w"),
                                             queryGrid: (3, 4), keyGrid: (3, 4))
        let out = attention(q: q, k: k, v: v, .init(scale: 1 / Float(8).squareRoot(), relativePosition: terms))
        try expectMatches(out, "\(name).out")
    }

    @Test func resizedPositionTable() throws {
        let table = try relativePositions(querySize: 3, keySize: 3, table: References.tensor("rel_pos_resized.table_h"))
        try expectMatches(table, "rel_pos_resized.positions_h")
    }

    // Guards tiling: with more queries than one tile, strided q/k/v views (as sliced from a
    // fused qkv projection) and every score term, the result equals the whole-matrix
    // composition softmax(scale q k^T + terms) v from the separately tested ops.
    // One head runs its rows in parallel under multi-threaded BLAS; several heads run in
    // parallel with single-threaded BLAS. Both paths are covered.
    // Window-sized grids too: 63 tokens (not a multiple of 8) and 196 (two tiles).
    @Test(arguments: [(1, 1, 13, 23), (2, 3, 13, 23), (1, 1, 7, 9), (2, 3, 14, 14)])
    func tiledEqualsWholeMatrix(batch: Int, heads: Int, gridH: Int, gridW: Int) throws {
        let (grid, depth) = ((h: gridH, w: gridW), 8)
        let tokens = grid.h * grid.w
        let fused = Tensor(shape: [batch, tokens, 3, heads, depth],
                           values: (0..<(batch * tokens * 3 * heads * depth)).map { Float(($0 * 2654435761) % 1000) / 500 - 1 })
        let qkv = fused.permuted([2, 0, 3, 1, 4])  // [3, B, heads, N, d], strided
        let q = qkv.sliced(0, 0..<1).reshaped([batch, heads, tokens, depth])
        let k = qkv.sliced(0, 1..<2).reshaped([batch, heads, tokens, depth])
        let v = qkv.sliced(0, 2..<3).reshaped([batch, heads, tokens, depth])
        let qView = Tensor(shape: [batch, heads, tokens, depth], strides: [tokens * 3 * heads * depth, depth, 3 * heads * depth, 1],
                           offset: 0, storage: fused.storage)
        #expect(!qView.isContiguous && qView.toArray() == q.toArray())
        let tableH = Tensor(shape: [2 * grid.h - 1, depth], values: (0..<((2 * grid.h - 1) * depth)).map { Float($0 % 17) / 10 - 0.8 })
        let tableW = Tensor(shape: [2 * grid.w - 1, depth], values: (0..<((2 * grid.w - 1) * depth)).map { Float($0 % 13) / 10 - 0.6 })
        let terms = relativePositionBias(q: qView, tableH: tableH, tableW: tableW, queryGrid: grid, keyGrid: grid)
        let bias = Tensor(shape: [heads, tokens, tokens], values: (0..<(heads * tokens * tokens)).map { Float($0 % 7) / 7 })
        let scale: Float = 0.3
        let tiled = attention(q: qView, k: k, v: v, .init(scale: scale, bias: bias, relativePosition: terms))

        // Whole-matrix reference: [B, heads, N, N] scores.
        var scores = affine(matmul(q, k.permuted([0, 1, 3, 2])), scale: scale)
        scores = add(scores, bias)
        let h = terms.height.reshaped([batch, heads, tokens, grid.h, 1])
        let w = terms.width.reshaped([batch, heads, tokens, 1, grid.w])
        scores = add(scores, add(h, w).reshaped([batch, heads, tokens, tokens]))
        let whole = matmul(softmax(scores), v).permuted([0, 2, 1, 3]).reshaped([batch, tokens, heads * depth])
        let comparison = compare(tiled, whole, atol: 1e-5, name: "tiled attention")
        #expect(comparison.passed, "\(comparison)")
    }

    // Guards the fused head (cgemm_attention_head), which attention takes without mask or
    // relative-position terms where weights are packed (AVX2, AVX-512): against
    // softmax(scale q k^T + bias) v in double precision, without a bias, with one per head
    // (`[heads, Nq, Nk]`, TinyViT's) and with one per item (`[B, heads, Nq, Nk]`), at queries not
    // a multiple of 16 or 64 (one, 17, 33, TinyViT's 49, a ViT's 197), keys not a multiple of 6
    // (one key, 7, 300), depths that fill no vector (13) and value depths unlike the keys' (5,
    // 70), on strided views of one buffer as a fused qkv projection gives them. Through
    // `attention` with the kernels in use, then each head build this CPU runs, called directly:
    // every build gives the AVX2 one's bits.
    @Test(arguments: [(1, 2, 1, 1, 8, 8, 0), (2, 3, 197, 197, 64, 64, 0), (1, 2, 17, 7, 13, 5, 0), (1, 4, 33, 300, 16, 70, 0),
                      (3, 4, 49, 49, 32, 32, 3), (2, 2, 17, 7, 13, 5, 4), (1, 3, 70, 65, 16, 24, 3)])
    func unmaskedEqualsDoublePrecision(batch: Int, heads: Int, queries: Int, keys: Int, depth: Int, valueDepth: Int, biasRank: Int) throws {
        let width = queries * depth + keys * (depth + valueDepth)  // one token's q, k and v for all heads, as [q | k | v]
        let values = (0..<(batch * heads * width)).map { Float(($0 &* 2654435761) % 2001) / 1000 - 1 }
        let buffer = Tensor(shape: [batch * heads * width], values: values)
        // [B, heads, N, d] views, rows `heads * d` apart as in a [B, N, heads * d] projection.
        func view(_ offset: Int, _ count: Int, _ d: Int) -> Tensor {
            Tensor(shape: [batch, heads, count, d], strides: [heads * width, d, heads * d, 1],
                   offset: offset * heads, storage: buffer.storage)
        }
        let q = view(0, queries, depth), k = view(queries * depth, keys, depth), v = view(queries * depth + keys * depth, keys, valueDepth)
        let scale: Float = 0.37
        let biasShape = biasRank == 0 ? nil : (biasRank == 3 ? [heads] : [batch, heads]) + [queries, keys]
        let bias = biasShape.map { shape in
            Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { Float(($0 &* 40503) % 1001) / 250 - 2 })
        }
        let result = attention(q: q, k: k, v: v, .init(scale: scale, bias: bias))
        #expect(result.shape == [batch, queries, heads * valueDepth])
        expectDoublePrecision(q: q, k: k, v: v, scale: scale, bias: bias, result.toArray(), "attention (\(cpuKernelSet))")

        let padded = (queries + 63) / 64 * 64
        let terms = bias.map(Self.headTerms)
        var outputs: [[Float]] = []
        for build in KernelSet.supported.compactMap(\.product) {
            let out = Tensor(zeros: [batch, queries, heads * valueDepth])
            for b in 0..<batch {
                for h in 0..<heads {
                    let itemTerms = terms.map { $0.pointer + (biasRank == 3 ? h : b * heads + h) * keys * padded }
                    build.attentionHead(queries, keys, depth, valueDepth, scale, itemTerms, padded,
                                        q.pointer + b * q.strides[0] + h * q.strides[1], q.strides[2],
                                        k.pointer + b * k.strides[0] + h * k.strides[1], k.strides[2],
                                        v.pointer + b * v.strides[0] + h * v.strides[1], v.strides[2],
                                        out.pointer + b * queries * heads * valueDepth + h * valueDepth, heads * valueDepth)
                }
            }
            expectDoublePrecision(q: q, k: k, v: v, scale: scale, bias: bias, out.toArray(), "\(build) head")
            outputs.append(out.toArray())
            if let mismatch = outputs.last!.indices.first(where: { outputs.last![$0].bitPattern != outputs[0][$0].bitPattern }) {
                Issue.record("\(build) head: element \(mismatch) is \(outputs.last![mismatch]), the first build gives \(outputs[0][mismatch])")
            }
        }
    }

    // `--precision bfloat16`'s fused head: the double-precision attention of q (scaled), k and v
    // rounded to bfloat16, and of the probabilities rounded where they weigh the values, at odd
    // depths and key counts (a pair's lone last half), value channels past a sliver, several
    // passes of queries, biases, and keys shared by a batch; and not the float32 head's result.
    @Test(.enabled(if: cpuRunsBFloat16, "this CPU has no AVX512_BF16"),
          arguments: [(2, 3, 197, 197, 64, 64, 0), (1, 2, 17, 7, 13, 5, 0), (1, 4, 33, 300, 16, 70, 0), (3, 4, 49, 49, 32, 32, 3),
                      (2, 2, 17, 7, 13, 5, 4), (1, 3, 70, 65, 16, 24, 3)])
    func bfloat16HeadEqualsDoublePrecisionOfRoundedValues(batch: Int, heads: Int, queries: Int, keys: Int, depth: Int, valueDepth: Int,
                                                          biasRank: Int) throws {
        let q = Tensor(shape: [batch, heads, queries, depth], values: (0..<(batch * heads * queries * depth)).map { Float(($0 &* 2654435761) % 2001) / 1000 - 1 })
        let k = Tensor(shape: [batch, heads, keys, depth], values: (0..<(batch * heads * keys * depth)).map { Float(($0 &* 40503) % 1999) / 800 - 1.2 })
        let v = Tensor(shape: [batch, heads, keys, valueDepth], values: (0..<(batch * heads * keys * valueDepth)).map { Float(($0 &* 69069) % 997) / 400 - 1.1 })
        let scale: Float = 0.37
        let biasShape = biasRank == 0 ? nil : (biasRank == 3 ? [heads] : [batch, heads]) + [queries, keys]
        let bias = biasShape.map { Tensor(shape: $0, values: (0..<$0.reduce(1, *)).map { Float(($0 &* 40503) % 1001) / 250 - 2 }) }
        let out = attention(q: q, k: k, v: v, .init(scale: scale, bias: bias), bfloat16: true).toArray()
        let float32 = attention(q: q, k: k, v: v, .init(scale: scale, bias: bias)).toArray()
        let (qs, ks, vs, bs) = (q.toArray().map { bfloat16(scale * $0) }, k.toArray().map(bfloat16), v.toArray().map(bfloat16), bias?.toArray())
        let ulp = Double(Float.ulpOfOne), step = 1.0 / 256  // a float32 ulp; a bfloat16 step, relative
        var (worst, differs) = (0.0, false)
        for b in 0..<batch {
            for h in 0..<heads {
                let item = b * heads + h
                for i in 0..<queries {
                    // q was scaled before it was rounded: a scale of 1 here.
                    let (scores, magnitude) = Self.exponentials(qs, ks, bs, perHeadBias: biasRank == 3, scale: 1, item: item, head: h, query: i,
                                                                queries: queries, keys: keys, depth: depth)
                    let sum = scores.reduce(0, +)
                    for d in 0..<valueDepth {
                        // The float32 head's bound for the scores' rounding, and each probability's
                        // rounding to bfloat16 allowed to go either way (the kernel rounds its float32
                        // exponentials, this its double ones: they can straddle a step).
                        var (weighted, spread) = (0.0, 0.0)
                        for j in 0..<keys {
                            let value = Double(vs[(item * keys + j) * valueDepth + d])
                            weighted += Double(bfloat16(Float(scores[j]))) * value
                            spread += scores[j] * abs(value)
                        }
                        let index = (b * queries + i) * heads * valueDepth + h * valueDepth + d
                        let bound = 8 * ulp * (2 * magnitude + 1) * spread / sum + step * spread / sum
                        worst = max(worst, abs(Double(out[index]) - weighted / sum) / bound)
                        differs = differs || out[index] != float32[index]
                    }
                }
            }
        }
        #expect(worst <= 1, "the worst element is \(worst) times its bound")
        #expect(differs, "the bfloat16 head gave the float32 head's result")
    }

    // Guards the fused head with a bias that masks every key of a query (-infinity): that
    // query's outputs are zeros, as the tiled path gives them, not NaN; the others are finite.
    // Through `attention`, then each head build this CPU runs.
    @Test func aFullyMaskedQueryGivesZeros() {
        let (heads, queries, keys, depth) = (2, 5, 6, 16)
        func values(_ count: Int, _ seed: Int) -> [Float] { (0..<count).map { Float((($0 + seed) &* 2654435761) % 2001) / 1000 - 1 } }
        var terms = values(heads * queries * keys, 4)
        for j in 0..<keys { terms[(1 * queries + 3) * keys + j] = -.infinity }  // head 1, query 3
        let bias = Tensor(shape: [heads, queries, keys], values: terms)
        let q = Tensor(shape: [1, heads, queries, depth], values: values(heads * queries * depth, 1))
        let k = Tensor(shape: [1, heads, keys, depth], values: values(heads * keys * depth, 2))
        let v = Tensor(shape: [1, heads, keys, depth], values: values(heads * keys * depth, 3))
        func expectZerosAt(_ out: [Float], _ name: String) {  // [queries, heads * depth]
            for i in 0..<queries {
                for c in 0..<heads * depth {
                    let value = out[i * heads * depth + c]
                    if i == 3 && c >= depth { #expect(value == 0, "\(name): query 3, channel \(c): \(value)") }
                    else { #expect(value.isFinite, "\(name): query \(i), channel \(c): \(value)") }
                }
            }
        }
        expectZerosAt(attention(q: q, k: k, v: v, .init(scale: 0.25, bias: bias)).toArray(), "attention (\(cpuKernelSet))")
        let padded = 64
        let transposedTerms = Self.headTerms(bias)
        for build in KernelSet.supported.compactMap(\.product) {
            let out = Tensor(zeros: [1, queries, heads * depth])
            for h in 0..<heads {
                build.attentionHead(queries, keys, depth, depth, 0.25, transposedTerms.pointer + h * keys * padded, padded,
                                    q.pointer + h * queries * depth, depth, k.pointer + h * keys * depth, depth,
                                    v.pointer + h * keys * depth, depth, out.pointer + h * depth, heads * depth)
            }
            expectZerosAt(out.toArray(), "\(build) head")
        }
    }

    // Guards the shared-keys path: keys and values of batch 1 expanded over the batch (the SAM
    // decoder's prompts against one image) give, bit for bit, what the same keys copied for
    // every item give, within rounding of double precision.
    @Test(arguments: [(64, 8, 7, 300, 16, 16), (3, 2, 17, 40, 13, 5)])
    func sharedKeysEqualCopiedKeys(batch: Int, heads: Int, queries: Int, keys: Int, depth: Int, valueDepth: Int) {
        func values(_ count: Int, _ seed: Int) -> [Float] { (0..<count).map { Float((($0 + seed) &* 2654435761) % 2001) / 1000 - 1 } }
        // q as a [B, N, heads * d] projection's view; k and v one item's, expanded.
        let q = Tensor(shape: [batch, queries, heads, depth], values: values(batch * queries * heads * depth, 1)).permuted([0, 2, 1, 3])
        let k = Tensor(shape: [1, heads, keys, depth], values: values(heads * keys * depth, 2))
        let v = Tensor(shape: [1, heads, keys, valueDepth], values: values(heads * keys * valueDepth, 3))
        let shared = attention(q: q, k: k.expanded([batch, heads, keys, depth]), v: v.expanded([batch, heads, keys, valueDepth]), .init(scale: 0.3))
        let copied = attention(q: q, k: k.expanded([batch, heads, keys, depth]).contiguous(),
                               v: v.expanded([batch, heads, keys, valueDepth]).contiguous(), .init(scale: 0.3))
        #expect(shared.toArray().map(\.bitPattern) == copied.toArray().map(\.bitPattern))
        expectDoublePrecision(q: q, k: k.expanded([batch, heads, keys, depth]).contiguous(),
                              v: v.expanded([batch, heads, keys, valueDepth]).contiguous(), scale: 0.3, shared.toArray(), "shared keys")
    }

    /// A bias `[..., Nq, Nk]` as the fused head takes its terms: each matrix transposed, keys
    /// down, rows padded to whole passes of 64 queries: `[matrices, Nk, padded]`.
    private static func headTerms(_ bias: Tensor) -> Tensor {
        let (queries, keys) = (bias.shape[bias.rank - 2], bias.shape[bias.rank - 1])
        let padded = (queries + 63) / 64 * 64, matrices = bias.count / (queries * keys), values = bias.toArray()
        var transposed = [Float](repeating: 0, count: matrices * keys * padded)
        for m in 0..<matrices {
            for i in 0..<queries {
                for j in 0..<keys { transposed[(m * keys + j) * padded + i] = values[(m * queries + i) * keys + j] }
            }
        }
        return Tensor(shape: [matrices, keys, padded], values: transposed)
    }

    /// Query `query` of item `item` (batch * heads + head) of `qs` and `ks` (`[B, heads, N, depth]`,
    /// flattened): its scores `scale q . k + bias` in double, exponentiated less their maximum, and
    /// the largest of their magnitudes (the sizes of a score's terms, summed).
    private static func exponentials(_ qs: [Float], _ ks: [Float], _ bs: [Float]?, perHeadBias: Bool, scale: Double, item: Int, head: Int,
                                     query: Int, queries: Int, keys: Int, depth: Int) -> (values: [Double], magnitude: Double) {
        var magnitude = 0.0
        let scores: [Double] = (0..<keys).map { j in
            var (dot, size) = (0.0, 0.0)
            for x in 0..<depth {
                let term = Double(qs[(item * queries + query) * depth + x]) * Double(ks[(item * keys + j) * depth + x])
                (dot, size) = (dot + term, size + abs(term))
            }
            let term = bs.map { Double($0[((perHeadBias ? head : item) * queries + query) * keys + j]) } ?? 0
            magnitude = max(magnitude, scale * size + abs(term))
            return scale * dot + term
        }
        let top = scores.max()!
        return (scores.map { Foundation.exp($0 - top) }, magnitude)
    }

    /// `out` ([B, queries, heads * valueDepth]) within rounding of softmax(scale q k^T + bias) v in
    /// double (`bias` `[heads, Nq, Nk]` or `[B, heads, Nq, Nk]`).
    private func expectDoublePrecision(q: Tensor, k: Tensor, v: Tensor, scale: Float, bias: Tensor? = nil, _ out: [Float], _ name: String) {
        let (batch, heads, queries, depth) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (keys, valueDepth) = (k.shape[2], v.shape[3])
        let (qs, ks, vs) = (q.toArray(), k.toArray(), v.toArray())
        let bs = bias?.toArray()
        // A score's rounding is a few ulps of its terms' magnitudes, and moves the output by as
        // much times the values' spread: the bound allows 8 ulps of each.
        let spread = Double(vs.map(abs).max() ?? 0), ulp = Double(Float.ulpOfOne)
        for b in 0..<batch {
            for h in 0..<heads {
                let item = b * heads + h
                for i in 0..<queries {
                    let (scores, magnitude) = Self.exponentials(qs, ks, bs, perHeadBias: bias?.rank == 3, scale: Double(scale), item: item,
                                                                head: h, query: i, queries: queries, keys: keys, depth: depth)
                    let sum = scores.reduce(0, +)
                    let bound = 8 * ulp * (2 * magnitude + 1) * spread
                    for d in 0..<valueDepth {
                        var weighted = 0.0
                        for j in 0..<keys { weighted += scores[j] * Double(vs[(item * keys + j) * valueDepth + d]) }
                        let got = Double(out[(b * queries + i) * heads * valueDepth + h * valueDepth + d])
                        #expect(abs(got - weighted / sum) <= bound, "\(name): head \(item), query \(i), channel \(d): \(got) for \(weighted / sum)")
                    }
                }
            }
        }
    }

    // The fused head as torch: NaN in a query row makes that row NaN (and no other); no keys
    // gives zeros.
    @Test func unmaskedNaNAndNoKeys() {
        var values: [Float] = (0..<(2 * 20 * 8)).map { Float($0 % 11) / 10 - 0.5 }
        values[3 * 8 + 2] = .nan  // head 0, query 3
        let q = Tensor(shape: [1, 2, 20, 8], values: values)
        let kv = Tensor(shape: [1, 2, 20, 8], values: (0..<(2 * 20 * 8)).map { Float($0 % 7) / 7 })
        let out = attention(q: q, k: kv, v: kv, .init(scale: 0.5)).toArray()  // [1, 20, 2 * 8]
        for i in 0..<20 {
            for c in 0..<16 {
                let value = out[i * 16 + c]
                #expect(value.isNaN == (i == 3 && c < 8), "query \(i), channel \(c): \(value)")
            }
        }
        let none = Tensor(shape: [1, 2, 0, 8], values: [])
        #expect(attention(q: q, k: none, v: none, .init(scale: 0.5)).toArray().allSatisfy { $0 == 0 })
    }
}
