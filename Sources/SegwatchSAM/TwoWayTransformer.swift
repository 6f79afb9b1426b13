// Ports segment_anything/modeling/transformer.py (TwoWayTransformer, TwoWayAttentionBlock,
// Attention).
//
// Prompts are batched: queries are `[B, T, C]`, one row per prompt. Image-side tensors
// (`keys`, `key_pe`) may have batch 1 while the queries have B: everything computed from them
// alone (in the first block, the keys' projections for token-to-image attention and the
// queries of image-to-token attention) is then computed once and broadcast.
import SegwatchNN
import SegwatchTensor

/// `Attention` of transformer.py: projections to `internal` channels (embedding / downsample
/// rate), multi-head attention, projection back.
///
/// Cross-attention meets a long side, the image's h * w positions, and a short one, a prompt's
/// few tokens. When the long side differs per prompt, projecting it costs a full `[h * w, C] x
/// [C, internal]` product per prompt, although only `heads * tokens` directions of it (56 for a
/// point prompt, against 128 internal channels) ever reach the result. So the weights that
/// touch the long side are folded into the short side's tokens instead, per head:
/// `q . (Wk x + bk) = (Wk^T q) . x + const`, the constant dropping out of the softmax over x;
/// `sum p (Wv x + bv) = Wv (sum p x) + bv`, as the probabilities sum to 1; and the output
/// projection of a long query side, `Wo concat_h(sum_t p v)`, becomes `sum_{h,t} p (Wo_h v)`.
/// The result is the reference's, in a different order of sums.
struct DecoderAttention<B: Backend>: Sendable {
    let backend: B
    let heads: Int
    let qProj: Linear<B>
    let kProj: Linear<B>
    let vProj: Linear<B>
    let outProj: Linear<B>
    /// Per-head weights for the folded products, d = internal / heads: `Wq_h`, `Wk_h` as
    /// `[1, heads, d, C]`; `Wv_h^T` as `[1, heads, C, d]`; `Wo_h^T` as `[1, heads, d, C]`.
    let qHeads: B.Value, kHeads: B.Value, vHeadsT: B.Value, outHeadsT: B.Value, qBiasHeads: B.Value, vBiasHeads: B.Value
    /// `out_proj.bias / heads`: added to every folded value, it comes out of the probabilities'
    /// sum (1 per head) as the bias, without a pass over the long side.
    let outBiasPerHead: B.Value
    /// `[heads, 1, 1, heads, 1]`, 1 where the two heads are the same: it lays every prompt's
    /// per-head keys on the diagonal of one matrix (see `foldedQueries`).
    let sameHead: B.Value

    init(_ w: Weights<B>, embeddingDim: Int, heads: Int) throws {
        backend = w.backend
        self.heads = heads
        let internalDim = try w.requireShape("q_proj.weight", rank: 2)[0]
        guard internalDim % heads == 0 else {
            throw SamError.unrecognized(file: w.reader.stateDict.path,
                                        reason: "'\(w.prefix)q_proj.weight' has \(internalDim) outputs, not a multiple of \(heads) heads")
        }
        // Plain weights: they are also split into the per-head weights below.
        qProj = try Linear(w.scope("q_proj"), input: embeddingDim, output: internalDim, packed: false)
        kProj = try Linear(w.scope("k_proj"), input: embeddingDim, output: internalDim, packed: false)
        vProj = try Linear(w.scope("v_proj"), input: embeddingDim, output: internalDim, packed: false)
        outProj = try Linear(w.scope("out_proj"), input: internalDim, output: embeddingDim, packed: false)
        let d = internalDim / heads
        let b = backend
        qHeads = b.reshape(qProj.weight, [1, heads, d, embeddingDim])
        kHeads = b.reshape(kProj.weight, [1, heads, d, embeddingDim])
        vHeadsT = b.contiguous(b.permute(b.reshape(vProj.weight, [1, heads, d, embeddingDim]), [0, 1, 3, 2]))
        outHeadsT = b.contiguous(b.permute(b.reshape(outProj.weight, [1, embeddingDim, heads, d]), [0, 2, 3, 1]))
        qBiasHeads = b.reshape(try w("q_proj.bias", [internalDim]), [1, heads, 1, d])
        vBiasHeads = b.reshape(try w("v_proj.bias", [internalDim]), [1, heads, 1, d])
        outBiasPerHead = b.affine(try w("out_proj.bias", [embeddingDim]), scale: 1 / Float(heads), shift: 0)
        sameHead = b.upload(Tensor(shape: [heads, 1, 1, heads, 1], values: (0..<heads * heads).map { $0 / heads == $0 % heads ? 1 : 0 }))
    }

    private var internalDim: Int { backend.shape(qProj.weight)[0] }

    /// `_separate_heads`: `[B, N, heads * c]` -> `[batch, heads, N, c]`, broadcasting batch 1.
    private func separateHeads(_ x: B.Value, batch: Int) -> B.Value {
        let shape = backend.shape(x)
        let heads = backend.permute(backend.reshape(x, [shape[0], shape[1], self.heads, shape[2] / self.heads]), [0, 2, 1, 3])
        guard shape[0] != batch else { return heads }
        return backend.expand(heads, [batch] + Array(backend.shape(heads).dropFirst()))
    }

    /// Folding pays when a side's per-head directions are fewer than the internal channels.
    private func folds(short: Int) -> Bool { heads * short < internalDim }

    func callAsFunction(q: B.Value, k: B.Value, v: B.Value) -> B.Value {
        let (qShape, kShape) = (backend.shape(q), backend.shape(k))
        let batch = max(qShape[0], kShape[0])
        // Keys shared by all prompts are projected once (batch 1): cheaper than folding.
        if kShape[1] > qShape[1], kShape[0] == batch, folds(short: qShape[1]) {
            return foldedKeys(q: q, k: k, v: v)
        }
        if qShape[1] > kShape[1], folds(short: kShape[1]) {
            return foldedQueries(q: q, k: k, v: v)
        }
        return attend(q: q, projectedKeys: kProj(k), projectedValues: vProj(v))
    }

    /// Attention of `q` to keys and values already projected (`k_proj(k)`, `v_proj(v)`), as
    /// the reference computes it; keys and values of batch 1 are shared by every query batch.
    func attend(q: B.Value, projectedKeys: B.Value, projectedValues: B.Value) -> B.Value {
        let batch = max(backend.shape(q)[0], backend.shape(projectedKeys)[0])
        let heads = (separateHeads(qProj(q), batch: batch), separateHeads(projectedKeys, batch: batch),
                     separateHeads(projectedValues, batch: batch))
        return outProj(backend.attention(q: heads.0, k: heads.1, v: heads.2, AttentionOptions(scale: scale)))
    }

    private var scale: Float { 1 / Float(internalDim / heads).squareRoot() }

    /// Few queries `[B, T, C]` against per-prompt keys and values `[B, N, C]`: the key and
    /// value projections are folded into the queries.
    private func foldedKeys(q: B.Value, k: B.Value, v: B.Value) -> B.Value {
        let b = backend
        let (batch, tokens, channels) = (b.shape(k)[0], b.shape(q)[1], b.shape(k)[2])
        let qh = separateHeads(b.affine(qProj(q), scale: scale, shift: 0), batch: batch)             // [B, H, T, d]
        let directions = b.reshape(b.matmul(qh, kHeads), [batch, heads * tokens, channels])         // Wk_h^T q: [B, H*T, C]
        let p = b.softmax(b.matmul(directions, b.permute(k, [0, 2, 1])))                            // [B, H*T, N]
        let pooled = b.reshape(b.matmul(p, v), [batch, heads, tokens, channels])                    // sum p x
        let out = b.binary(b.matmul(pooled, vHeadsT), .add, vBiasHeads)                              // [B, H, T, d]
        return outProj(b.reshape(b.permute(out, [0, 2, 1, 3]), [batch, tokens, internalDim]))
    }

    /// Many queries `[1 or B, N, C]` against few keys and values `[B, T, C]`: the output
    /// projection is folded into the values, and, when the queries differ per prompt, the
    /// query projection into the keys.
    private func foldedQueries(q: B.Value, k: B.Value, v: B.Value) -> B.Value {
        let b = backend
        let (qShape, tokens) = (b.shape(q), b.shape(k)[1])
        let batch = max(qShape[0], b.shape(k)[0])
        if qShape[0] < batch { return attend(projectedQueries: qProj(q), k: k, v: v) }
        let (positions, channels) = (qShape[1], qShape[2])
        let kh = separateHeads(b.affine(kProj(k), scale: scale, shift: 0), batch: batch)            // [B, H, T, d]
        let khT = b.permute(kh, [0, 1, 3, 2])                                                        // [B, H, d, T]
        let directions = b.matmul(b.permute(qHeads, [0, 1, 3, 2]), khT)                             // Wq_h^T k: [B, H, C, T]
        let folded = b.reshape(b.contiguous(b.permute(directions, [0, 2, 1, 3])), [batch, channels, heads * tokens])
        let bias = b.reshape(b.matmul(qBiasHeads, khT), [batch, 1, heads * tokens])                 // bq_h . k
        let scores = b.binary(b.matmul(q, folded), .add, bias)
        let p = b.reshape(b.softmax(b.reshape(scores, [batch, positions, heads, tokens])), [batch, positions, heads * tokens])
        return b.matmul(p, foldedValues(v, batch: batch))
    }

    /// Many queries shared by every prompt, already projected (`q_proj(q)`, `[1, N, H*d]`),
    /// against each prompt's few keys and values `[B, T, C]`.
    ///
    /// Every prompt's keys go into one product: head h's d x T block of prompt b sits at rows
    /// h*d, columns (b*H + h)*T of a [H*d, B*H*T] matrix, zero elsewhere. One product of N x
    /// H*d x B*H*T then gives the scores in [N, B, H*T] order, where B*H products of N x d x T
    /// and a transposition of the result cost more; the probabilities are read in that order as
    /// a strided view.
    func attend(projectedQueries: B.Value, k: B.Value, v: B.Value) -> B.Value {
        let b = backend
        let (batch, tokens, positions) = (b.shape(k)[0], b.shape(k)[1], b.shape(projectedQueries)[1])
        let d = internalDim / heads
        let kh = separateHeads(b.affine(kProj(k), scale: scale, shift: 0), batch: batch)            // [B, H, T, d]
        let qp = b.reshape(projectedQueries, [positions, internalDim])                              // [N, H*d]
        let blocks = b.binary(b.reshape(b.permute(kh, [3, 0, 1, 2]), [1, d, batch, heads, tokens]), .multiply, sameHead)
        let scores = b.matmul(qp, b.reshape(blocks, [internalDim, batch * heads * tokens]))         // [N, B*H*T]
        let probabilities = b.reshape(b.softmax(b.reshape(scores, [positions, batch * heads, tokens])), [positions, batch, heads * tokens])
        return b.matmul(b.permute(probabilities, [1, 0, 2]), foldedValues(v, batch: batch))         // [B, N, C]
    }

    /// Each prompt's values with the output projection folded in, `Wo_h v + bo / H`: `[B, H*T, C]`.
    private func foldedValues(_ v: B.Value, batch: Int) -> B.Value {
        let b = backend
        let (tokens, channels) = (b.shape(v)[1], b.shape(outProj.weight)[0])
        let vh = separateHeads(vProj(v), batch: batch)                                               // [B, H, T, d]
        return b.binary(b.reshape(b.matmul(vh, outHeadsT), [batch, heads * tokens, channels]), .add, outBiasPerHead)
    }
}

/// `TwoWayAttentionBlock`: self-attention of the tokens, token-to-image cross-attention, MLP,
/// image-to-token cross-attention.
struct TwoWayAttentionBlock<B: Backend>: Sendable {
    let backend: B
    let selfAttn: DecoderAttention<B>
    let norm1: LayerNorm<B>
    let crossAttnTokenToImage: DecoderAttention<B>
    let norm2: LayerNorm<B>
    let mlp: MLPBlock<B>
    let norm3: LayerNorm<B>
    let norm4: LayerNorm<B>
    let crossAttnImageToToken: DecoderAttention<B>
    let skipFirstLayerPE: Bool

    init(_ w: Weights<B>, embeddingDim: Int, heads: Int, skipFirstLayerPE: Bool) throws {
        backend = w.backend
        selfAttn = try DecoderAttention(w.scope("self_attn"), embeddingDim: embeddingDim, heads: heads)
        norm1 = try LayerNorm(w.scope("norm1"), channels: embeddingDim, eps: 1e-5)
        crossAttnTokenToImage = try DecoderAttention(w.scope("cross_attn_token_to_image"), embeddingDim: embeddingDim, heads: heads)
        norm2 = try LayerNorm(w.scope("norm2"), channels: embeddingDim, eps: 1e-5)
        let mlpDim = try w.requireShape("mlp.lin1.weight", rank: 2)[0]
        mlp = try MLPBlock(w.scope("mlp"), embeddingDim: embeddingDim, mlpDim: mlpDim, activation: .relu)
        norm3 = try LayerNorm(w.scope("norm3"), channels: embeddingDim, eps: 1e-5)
        norm4 = try LayerNorm(w.scope("norm4"), channels: embeddingDim, eps: 1e-5)
        crossAttnImageToToken = try DecoderAttention(w.scope("cross_attn_image_to_token"), embeddingDim: embeddingDim, heads: heads)
        self.skipFirstLayerPE = skipFirstLayerPE
    }

    /// The block; `image`, when given, is its image side computed once for every batch of an
    /// image (`imageSide`), and `keys` is then `image.keys`.
    func callAsFunction(queries: B.Value, keys: B.Value, queryPE: B.Value, keyPE: B.Value,
                        image: DecoderImageSide<B.Value>? = nil) -> (queries: B.Value, keys: B.Value) {
        var queries = queries, keys = keys
        // Self attention block
        if skipFirstLayerPE {
            queries = norm1(selfAttn(q: queries, k: queries, v: queries))
        } else {
            let q = backend.binary(queries, .add, queryPE)
            queries = norm1(queries, adding: selfAttn(q: q, k: q, v: queries))
        }

        // Cross attention block, tokens attending to image embedding
        var q = backend.binary(queries, .add, queryPE)
        let k = image?.keysWithPE ?? backend.binary(keys, .add, keyPE)
        let attended = image.map { crossAttnTokenToImage.attend(q: q, projectedKeys: $0.tokenToImageKeys, projectedValues: $0.tokenToImageValues) }
            ?? crossAttnTokenToImage(q: q, k: k, v: keys)
        queries = norm2(queries, adding: attended)

        // MLP block
        queries = norm3(queries, adding: mlp(queries))

        // Cross attention block, image embedding attending to tokens
        q = backend.binary(queries, .add, queryPE)
        let attnOut = image.map { crossAttnImageToToken.attend(projectedQueries: $0.imageToTokenQueries, k: q, v: queries) }
            ?? crossAttnImageToToken(q: k, k: q, v: queries)
        keys = norm4(keys, adding: attnOut)
        return (queries, keys)
    }

    /// What the block computes from the image alone, `keys` `[1, h * w, C]` shared by every
    /// prompt: the projections that need no prompt.
    func imageSide(keys: B.Value, keyPE: B.Value) -> DecoderImageSide<B.Value> {
        let k = backend.binary(keys, .add, keyPE)
        return DecoderImageSide(keys: keys, keysWithPE: k, tokenToImageKeys: crossAttnTokenToImage.kProj(k),
                                tokenToImageValues: crossAttnTokenToImage.vProj(keys),
                                imageToTokenQueries: crossAttnImageToToken.qProj(k))
    }
}

/// The first block's image side when every prompt of an image meets the same image rows (no
/// mask input): it depends on no prompt, so all the image's batches share one, computed once
/// (each batch computed it again, a twentieth of the decoder's time at 8 prompts a batch).
public struct DecoderImageSide<Value: Sendable>: Sendable {
    /// The image rows plus the no-mask embedding, `[1, h * w, C]`, and those plus the image PE.
    let keys: Value, keysWithPE: Value
    /// Token-to-image attention's `k_proj(keys + PE)` and `v_proj(keys)`.
    let tokenToImageKeys: Value, tokenToImageValues: Value
    /// Image-to-token attention's `q_proj(keys + PE)`.
    let imageToTokenQueries: Value
}

/// `TwoWayTransformer`.
struct TwoWayTransformer<B: Backend>: Sendable {
    let backend: B
    let layers: [TwoWayAttentionBlock<B>]
    let finalAttnTokenToImage: DecoderAttention<B>
    let normFinalAttn: LayerNorm<B>

    /// The official builder fixes 8 heads; a state dict cannot record it.
    init(_ w: Weights<B>, embeddingDim: Int, heads: Int = 8) throws {
        backend = w.backend
        let depth = w.count("layers")
        guard depth > 0 else { throw SamError.unrecognized(file: w.reader.stateDict.path, reason: "no '\(w.prefix)layers.*' tensors") }
        layers = try (0..<depth).map {
            try TwoWayAttentionBlock(w.scope("layers.\($0)"), embeddingDim: embeddingDim, heads: heads, skipFirstLayerPE: $0 == 0)
        }
        finalAttnTokenToImage = try DecoderAttention(w.scope("final_attn_token_to_image"), embeddingDim: embeddingDim, heads: heads)
        normFinalAttn = try LayerNorm(w.scope("norm_final_attn"), channels: embeddingDim, eps: 1e-5)
    }

    /// `image`, the image embedding as rows of channels `[1 or B, h * w, C]` (the reference's
    /// `flatten(2).permute(0, 2, 1)`); `keyPE`, the image PE flattened the same way
    /// (it is a constant: the prompt encoder keeps it so); `pointEmbedding` `[B, T, C]`.
    /// Returns the tokens `[B, T, C]` and the image keys `[B, h * w, C]`.
    /// With `shared`, the first block's image side computed beforehand from `image` (batch 1).
    func callAsFunction(image: B.Value, keyPE: B.Value, pointEmbedding: B.Value,
                        shared: DecoderImageSide<B.Value>? = nil) -> (queries: B.Value, keys: B.Value) {
        var keys = image, queries = pointEmbedding
        for (i, layer) in layers.enumerated() {
            (queries, keys) = layer(queries: queries, keys: keys, queryPE: pointEmbedding, keyPE: keyPE, image: i == 0 ? shared : nil)
        }
        let q = backend.binary(queries, .add, pointEmbedding)
        let k = backend.binary(keys, .add, keyPE)
        queries = normFinalAttn(queries, adding: finalAttnTokenToImage(q: q, k: k, v: keys))
        return (queries, keys)
    }
}
