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
struct DecoderAttention<B: Backend>: Sendable {
    let backend: B
    let heads: Int
    let qProj: Linear<B>
    let kProj: Linear<B>
    let vProj: Linear<B>
    let outProj: Linear<B>

    init(_ w: Weights<B>, embeddingDim: Int, heads: Int) throws {
        backend = w.backend
        self.heads = heads
        let internalDim = try w.requireShape("q_proj.weight", rank: 2)[0]
        guard internalDim % heads == 0 else {
            throw SamError.unrecognized(file: w.reader.stateDict.path,
                                        reason: "'\(w.prefix)q_proj.weight' has \(internalDim) outputs, not a multiple of \(heads) heads")
        }
        qProj = try Linear(w.scope("q_proj"), input: embeddingDim, output: internalDim)
        kProj = try Linear(w.scope("k_proj"), input: embeddingDim, output: internalDim)
        vProj = try Linear(w.scope("v_proj"), input: embeddingDim, output: internalDim)
        outProj = try Linear(w.scope("out_proj"), input: internalDim, output: embeddingDim)
    }

    /// `_separate_heads`: `[B, N, heads * c]` -> `[batch, heads, N, c]`, broadcasting batch 1.
    private func separateHeads(_ x: B.Value, batch: Int) -> B.Value {
        let shape = backend.shape(x)
        let heads = backend.permute(backend.reshape(x, [shape[0], shape[1], self.heads, shape[2] / self.heads]), [0, 2, 1, 3])
        guard shape[0] != batch else { return heads }
        return backend.expand(heads, [batch] + Array(backend.shape(heads).dropFirst()))
    }

    func callAsFunction(q: B.Value, k: B.Value, v: B.Value) -> B.Value {
        callAsFunction(projected: (qProj(q), kProj(k), vProj(v)))
    }

    /// Attention of already projected q, k, v (so shared projections can be reused).
    func callAsFunction(projected: (q: B.Value, k: B.Value, v: B.Value)) -> B.Value {
        let batch = max(backend.shape(projected.q)[0], backend.shape(projected.k)[0], backend.shape(projected.v)[0])
        let q = separateHeads(projected.q, batch: batch)
        let k = separateHeads(projected.k, batch: batch)
        let v = separateHeads(projected.v, batch: batch)
        let channels = backend.shape(q)[3]
        return outProj(backend.attention(q: q, k: k, v: v, AttentionOptions(scale: 1 / Float(channels).squareRoot())))
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

    func callAsFunction(queries: B.Value, keys: B.Value, queryPE: B.Value, keyPE: B.Value) -> (queries: B.Value, keys: B.Value) {
        var queries = queries, keys = keys
        // Self attention block
        if skipFirstLayerPE {
            queries = selfAttn(q: queries, k: queries, v: queries)
        } else {
            let q = backend.binary(queries, .add, queryPE)
            queries = backend.binary(queries, .add, selfAttn(q: q, k: q, v: queries))
        }
        queries = norm1(queries)

        // Cross attention block, tokens attending to image embedding
        var q = backend.binary(queries, .add, queryPE)
        let k = backend.binary(keys, .add, keyPE)
        queries = backend.binary(queries, .add, crossAttnTokenToImage(q: q, k: k, v: keys))
        queries = norm2(queries)

        // MLP block
        queries = norm3(backend.binary(queries, .add, mlp(queries)))

        // Cross attention block, image embedding attending to tokens
        q = backend.binary(queries, .add, queryPE)
        let attnOut = crossAttnImageToToken(q: k, k: q, v: queries)
        keys = norm4(backend.binary(keys, .add, attnOut))
        return (queries, keys)
    }
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

    /// `imageEmbedding` `[1 or B, C, h, w]`; `keyPE`, the image PE already flattened to
    /// `[1, h * w, C]` (it is a constant: the prompt encoder keeps it so); `pointEmbedding`
    /// `[B, T, C]`. Returns the tokens `[B, T, C]` and the image keys `[B, h * w, C]`.
    func callAsFunction(imageEmbedding: B.Value, keyPE: B.Value, pointEmbedding: B.Value) -> (queries: B.Value, keys: B.Value) {
        let s = backend.shape(imageEmbedding)
        var keys = backend.contiguous(backend.permute(backend.reshape(imageEmbedding, [s[0], s[1], s[2] * s[3]]), [0, 2, 1]))
        var queries = pointEmbedding
        for layer in layers {
            (queries, keys) = layer(queries: queries, keys: keys, queryPE: pointEmbedding, keyPE: keyPE)
        }
        let q = backend.binary(queries, .add, pointEmbedding)
        let k = backend.binary(keys, .add, keyPE)
        queries = normFinalAttn(backend.binary(queries, .add, finalAttnTokenToImage(q: q, k: k, v: keys)))
        return (queries, keys)
    }
}
