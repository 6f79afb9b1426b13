import SegwatchTensor
import SegwatchTestSupport
import Testing

struct AttentionTests {
    init() { CPUThreads.set(2) }

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
}
