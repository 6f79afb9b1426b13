import CGemm

/// Terms added to attention scores before the softmax.
public struct AttentionOptions<Value: Sendable>: Sendable {
    /// Multiplies `q k^T`; usually `1 / sqrt(head dim)`.
    public var scale: Float
    /// Masks keys after the query's position (CLIP's text tower).
    public var causal: Bool
    /// An additive bias `[heads, Nq, Nk]` (shared by the batch) or `[batch, heads, Nq, Nk]`
    /// (TinyViT's attention biases).
    public var bias: Value?
    /// SAM's decomposed relative-position terms, from `relativePositionBias`.
    public var relativePosition: RelativePositionBias<Value>?

    public init(scale: Float, causal: Bool = false, bias: Value? = nil, relativePosition: RelativePositionBias<Value>? = nil) {
        self.scale = scale
        self.causal = causal
        self.bias = bias
        self.relativePosition = relativePosition
    }
}

extension AttentionOptions {
    /// The same options over other values (each backend's, or their shapes).
    public func map<T>(_ transform: (Value) -> T) -> AttentionOptions<T> {
        AttentionOptions<T>(scale: scale, causal: causal, bias: bias.map(transform),
                            relativePosition: relativePosition.map {
                                RelativePositionBias(height: transform($0.height), width: transform($0.width), keyGrid: $0.keyGrid)
                            })
    }
}

/// `(batch, heads, queries, depth, keys, valueDepth)` of an attention call whose operands have
/// these shapes, checked as every backend checks them: q, k, v `[B, heads, N, d]` agreeing, the
/// bias `[heads, Nq, Nk]` or `[B, heads, Nq, Nk]`, relative-position terms on the key grid.
package func attentionShape(q: [Int], k: [Int], v: [Int], _ options: AttentionOptions<[Int]>)
    -> (batch: Int, heads: Int, queries: Int, depth: Int, keys: Int, valueDepth: Int) {
    precondition(q.count == 4 && k.count == 4 && v.count == 4, "attention: q \(q), k \(k), v \(v) must be [B, heads, N, d]")
    let (batch, heads, queries, depth) = (q[0], q[1], q[2], q[3])
    let keys = k[2], valueDepth = v[3]
    precondition(k == [batch, heads, keys, depth] && v == [batch, heads, keys, valueDepth], "attention: q \(q), k \(k), v \(v) disagree")
    if let bias = options.bias {
        precondition(bias == [heads, queries, keys] || bias == [batch, heads, queries, keys],
                     "attention: bias \(bias) for \(batch) x \(heads) heads x \(queries) x \(keys)")
    }
    if let relative = options.relativePosition {
        precondition(relative.keyGrid.h * relative.keyGrid.w == keys
                     && relative.height == [batch, heads, queries, relative.keyGrid.h]
                     && relative.width == [batch, heads, queries, relative.keyGrid.w],
                     "attention: relative-position terms \(relative.height), \(relative.width) for \(keys) keys")
    }
    return (batch, heads, queries, depth, keys, valueDepth)
}

/// Query rows per tile: a tile's scores, `tile x Nk` floats, stay in cache.
let attentionTile = 128

/// Scaled dot-product attention, `softmax(scale * q k^T + terms) v`, on `[batch, heads, N, d]`
/// queries, keys and values (strided views welcome), returning `[batch, Nq, heads * dv]`: the
/// heads already recombined as every reference model does next.
///
/// Computed head by head and `attentionTile` query rows at a time, so the scores of 4096 tokens
/// never exist for more than one tile: memory is `tile x Nk`, not `heads x Nq x Nk`. Without a
/// mask or relative-position terms, where weights are packed, a head is one fused pass instead
/// (`cgemm_attention_head`), an additive bias included.
///
/// With `bfloat16` (only where `cpuRunsBFloat16`), the fused heads multiply in bfloat16
/// (`cgemm_attention_head_bf16`); the other paths stay float32.
public func attention(q: Tensor, k: Tensor, v: Tensor, _ options: AttentionOptions<Tensor>, bfloat16: Bool = false) -> Tensor {
    let (batch, heads, queries, depth, keys, valueDepth) = attentionShape(q: q.shape, k: k.shape, v: v.shape, options.map(\.shape))
    let q = q.strides[3] == 1 ? q : q.contiguous()
    let k = k.strides[3] == 1 ? k : k.contiguous()
    let v = v.strides[3] == 1 ? v : v.contiguous()
    let bias = options.bias?.contiguous()
    let relative = options.relativePosition
    let result = Tensor(uninitialized: [batch, queries, heads * valueDepth])
    let items = batch * heads
    if let product = packedKernels, relative == nil, !options.causal, items >= CPUEngine.current.threads {
        let head: KernelSet.Product.AttentionFunction = bfloat16 ? cgemm_attention_head_bf16 : product.attentionHead
        // A ViT's attention: each head in one fused pass (cgemm_attention_head), heads in parallel.
        // A bias goes in transposed, keys down and queries across as the head computes its
        // scores, rows padded to whole passes of 64 queries (TinyViT's 49-token windows: the
        // general path below packed and multiplied such small heads at a third of the rate).
        let padded = (queries + 63) & ~63
        let terms = bias.map { bias in
            let matrices = bias.count / (queries * keys)
            let transposed = Tensor(zeros: [matrices, keys, padded])
            parallelFor(matrices) { range in
                for item in range {
                    let from = bias.pointer + item * queries * keys, to = transposed.pointer + item * keys * padded
                    for i in 0..<queries {
                        for j in 0..<keys { to[j * padded + i] = from[i * keys + j] }
                    }
                }
            }
            return transposed
        }
        if batch > 1, terms == nil, k.strides[0] == 0, v.strides[0] == 0, q.strides[0] == queries * q.strides[2],
           heads >= CPUEngine.current.threads {
            // Keys and values shared by the batch (a batch of 1 expanded: the SAM decoder's first
            // token-to-image attention, 7 queries of each prompt against the image's 4096
            // positions): the batch's queries go through each head together, filling the 64
            // query lanes of a pass that 7 left mostly empty, the keys packed once per head.
            parallelFor(heads) { range in
                for h in range {
                    head(batch * queries, keys, depth, valueDepth, options.scale, nil, 0,
                                         q.pointer + h * q.strides[1], q.strides[2], k.pointer + h * k.strides[1], k.strides[2],
                                         v.pointer + h * v.strides[1], v.strides[2], result.pointer + h * valueDepth, heads * valueDepth)
                }
            }
            return result
        }
        parallelFor(items) { range in
            for item in range {
                let (b, h) = (item / heads, item % heads)
                let itemTerms = terms.map { $0.pointer + ($0.shape[0] == items ? item : h) * keys * padded }
                head(queries, keys, depth, valueDepth, options.scale, itemTerms, padded,
                                     q.pointer + b * q.strides[0] + h * q.strides[1], q.strides[2],
                                     k.pointer + b * k.strides[0] + h * k.strides[1], k.strides[2],
                                     v.pointer + b * v.strides[0] + h * v.strides[1], v.strides[2],
                                     result.pointer + b * queries * heads * valueDepth + h * valueDepth, heads * valueDepth)
            }
        }
        return result
    }
    // Up to two tiles' worth of queries run as one: a second tile would pack k and v again for
    // a few rows (ViT's 197 tokens), and the scores still fit in cache.
    let tile = queries <= 2 * attentionTile ? queries : attentionTile

    /// Keys and values packed for the packed product, once per head (where OpenBLAS would pack
    /// them again for every tile), when a head runs on one thread.
    struct PackedHead {
        let keys: Tensor, values: Tensor

        init(keys count: Int, depth: Int, valueDepth: Int) {
            keys = Tensor(uninitialized: [cgemm_packed_count(count, depth)])
            values = Tensor(uninitialized: [cgemm_packed_count(valueDepth, count)])
        }
    }

    /// One head: tiles of scores, their terms and softmax, then the tile's share of the output.
    func attendHead(_ b: Int, _ h: Int, scores: UnsafeMutablePointer<Float>, parallelRows: Bool, packed: PackedHead?) {
        let qBase = q.pointer + b * q.strides[0] + h * q.strides[1]
        let kBase = k.pointer + b * k.strides[0] + h * k.strides[1]
        let vBase = v.pointer + b * v.strides[0] + h * v.strides[1]
        let biasBase = bias.map { $0.pointer + ($0.rank == 4 ? (b * heads + h) : h) * queries * keys }
        if let packed {
            cgemm_pack_strided(kBase, keys, depth, k.strides[2], 1, packed.keys.pointer)
            cgemm_pack_strided(vBase, valueDepth, keys, 1, v.strides[2], packed.values.pointer)
        }
        for start in stride(from: 0, to: queries, by: tile) {
            let rows = min(tile, queries - start)
            let output = result.pointer + (b * queries + start) * heads * valueDepth + h * valueDepth
            if let packed {
                packedKernels!.packedProduct(0, rows, keys, depth, qBase + start * q.strides[2], q.strides[2], packed.keys.pointer,
                                     0, (keys + 15) / 16, options.scale, scores, keys, nil, nil, 0, CGEMM_IDENTITY)
            } else {
                sgemm(m: rows, n: keys, k: depth, alpha: options.scale, a: qBase + start * q.strides[2], lda: q.strides[2],
                      b: kBase, ldb: k.strides[2], transposeB: true, c: scores, ldc: keys)
            }
            func finish(_ range: Range<Int>) {
                for r in range {
                    let row = scores + r * keys, query = start + r
                    if let biasBase {
                        kernels.add(row, biasBase + query * keys, row, keys)
                    }
                    if let relative {
                        let (kh, kw) = relative.keyGrid
                        let index = (b * heads + h) * queries + query
                        let hTerms = relative.height.pointer + index * kh, wTerms = relative.width.pointer + index * kw
                        for y in 0..<kh {
                            let line = row + y * kw, hy = hTerms[y]
                            for x in 0..<kw { line[x] += hy + wTerms[x] }
                        }
                    }
                    if options.causal, query + 1 < keys {
                        (row + query + 1).update(repeating: -.infinity, count: keys - query - 1)
                    }
                    kernels.softmaxRow(row, keys)
                }
            }
            if parallelRows { parallelFor(rows, grain: 4, finish) } else { finish(0..<rows) }
            if let packed {
                packedKernels!.packedProduct(0, rows, valueDepth, keys, scores, keys, packed.values.pointer, 0, (valueDepth + 15) / 16, 1,
                                     output, heads * valueDepth, nil, nil, 0, CGEMM_IDENTITY)
            } else {
                sgemm(m: rows, n: valueDepth, k: keys, a: scores, lda: keys, b: vBase, ldb: v.strides[2],
                      c: output, ldc: heads * valueDepth)
            }
        }
    }

    if items >= CPUEngine.current.threads {
        // Heads in parallel, each on one thread (its products included): no hand-over between
        // threads inside a head.
        parallelFor(items) { range in
            let scores = Tensor(uninitialized: [tile, keys])
            let packed = packsWeights ? PackedHead(keys: keys, depth: depth, valueDepth: valueDepth) : nil
            for item in range { attendHead(item / heads, item % heads, scores: scores.pointer, parallelRows: false, packed: packed) }
        }
    } else {
        let scores = Tensor(uninitialized: [tile, keys])
        for item in 0..<items { attendHead(item / heads, item % heads, scores: scores.pointer, parallelRows: true, packed: nil) }
    }
    return result
}

/// SAM's decomposed relative-position terms (`add_decomposed_rel_pos`): for each query, one
/// term per key row and one per key column, added to the scores as `height[.., ky] + width[.., kx]`.
public struct RelativePositionBias<Value: Sendable>: Sendable {
    /// `[batch, heads, Nq, key rows]`.
    public var height: Value
    /// `[batch, heads, Nq, key columns]`.
    public var width: Value
    public var keyGrid: (h: Int, w: Int)

    public init(height: Value, width: Value, keyGrid: (h: Int, w: Int)) {
        self.height = height
        self.width = width
        self.keyGrid = keyGrid
    }
}

/// SAM's `get_rel_pos`: the `[q, k, C]` table of relative-position embeddings, resized with
/// linear interpolation when the stored table does not fit the sizes.
public func relativePositions(querySize: Int, keySize: Int, table: Tensor) -> Tensor {
    let distances = 2 * max(querySize, keySize) - 1
    var table = table.contiguous()
    let channels = table.shape[1]
    if table.shape[0] != distances {
        // [L, C] -> [1, C, 1, L] -> linear resize along L (bilinear with one row is linear).
        let resized = interpolate(table.permuted([1, 0]).reshaped([1, channels, 1, table.shape[0]]),
                                  size: (1, distances), mode: .bilinear)
        table = resized.reshaped([channels, distances]).permuted([1, 0]).contiguous()
    }
    let qScale = max(Double(keySize) / Double(querySize), 1), kScale = max(Double(querySize) / Double(keySize), 1)
    let result = Tensor(uninitialized: [querySize, keySize, channels])
    for qi in 0..<querySize {
        for ki in 0..<keySize {
            let coordinate = Int(Double(qi) * qScale - Double(ki) * kScale + Double(keySize - 1) * kScale)
            (result.pointer + (qi * keySize + ki) * channels).update(from: table.pointer + coordinate * channels, count: channels)
        }
    }
    return result
}

/// Computes SAM's decomposed relative-position terms for queries `q [batch, heads, qh*qw, C]`
/// (unscaled) on a `queryGrid` attending to a `keyGrid`, with tables `rel_pos_h` and `rel_pos_w`.
public func relativePositionBias(q: Tensor, tableH: Tensor, tableW: Tensor,
                                 queryGrid: (h: Int, w: Int), keyGrid: (h: Int, w: Int)) -> RelativePositionBias<Tensor> {
    let (batch, heads, queries, channels) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
    precondition(queries == queryGrid.h * queryGrid.w, "relative position: \(queries) queries on a \(queryGrid) grid")
    let rh = relativePositions(querySize: queryGrid.h, keySize: keyGrid.h, table: tableH)  // [qh, kh, C]
    let rw = relativePositions(querySize: queryGrid.w, keySize: keyGrid.w, table: tableW)  // [qw, kw, C]
    let q = q.strides[3] == 1 ? q : q.contiguous()
    let height = Tensor(uninitialized: [batch, heads, queries, keyGrid.h])
    let width = Tensor(uninitialized: [batch, heads, queries, keyGrid.w])
    for b in 0..<batch {
        for h in 0..<heads {
            let base = q.pointer + b * q.strides[0] + h * q.strides[1], ld = q.strides[2]
            let item = (b * heads + h) * queries
            // rel_h[y, x, :] = q[y, x] . Rh[y]: the queries of row y against table row y.
            for y in 0..<queryGrid.h {
                sgemm(m: queryGrid.w, n: keyGrid.h, k: channels, a: base + y * queryGrid.w * ld, lda: ld,
                      b: rh.pointer + y * keyGrid.h * channels, ldb: channels, transposeB: true,
                      c: height.pointer + (item + y * queryGrid.w) * keyGrid.h, ldc: keyGrid.h)
            }
            // rel_w[y, x, :] = q[y, x] . Rw[x]: one small product per column.
            for x in 0..<queryGrid.w {
                sgemm(m: queryGrid.h, n: keyGrid.w, k: channels, a: base + x * ld, lda: queryGrid.w * ld,
                      b: rw.pointer + x * keyGrid.w * channels, ldb: channels, transposeB: true,
                      c: width.pointer + (item + x) * keyGrid.w, ldc: queryGrid.w * keyGrid.w)
            }
        }
    }
    return RelativePositionBias(height: height, width: width, keyGrid: keyGrid)
}
