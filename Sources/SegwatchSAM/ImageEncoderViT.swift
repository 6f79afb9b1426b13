// Ports segment_anything/modeling/image_encoder.py (ImageEncoderViT, Block, Attention,
// PatchEmbed) of segment-anything 1.0: the encoder of SAM ViT-B, ViT-L and ViT-H.
//
// Every hyper-parameter comes from the checkpoint's shapes (the official builder's arguments
// are not stored): embed dim and patch size from `patch_embed.proj.weight`, depth from the
// number of `blocks.*`, head dim from `rel_pos_h`'s width (heads = embed / head dim), window
// size from `rel_pos_h`'s length (2 * window - 1; a global block's table spans the whole grid),
// MLP width from `mlp.lin1.weight`, output channels from `neck.0.weight`.
import SegwatchNN
import SegwatchTensor

/// `Attention` of image_encoder.py: multi-head self-attention with decomposed relative
/// position terms, on `[B, H, W, C]` tokens.
struct ViTAttention<B: Backend>: Sendable {
    let backend: B
    let heads: Int
    let qkv: Linear<B>
    let proj: Linear<B>
    let relPosH: B.Value
    let relPosW: B.Value

    init(_ w: Weights<B>, dim: Int, heads: Int, inputSize: Int) throws {
        backend = w.backend
        self.heads = heads
        qkv = try Linear(w.scope("qkv"), input: dim, output: 3 * dim)
        proj = try Linear(w.scope("proj"), input: dim, output: dim)
        relPosH = try w("rel_pos_h", [2 * inputSize - 1, dim / heads])
        relPosW = try w("rel_pos_w", [2 * inputSize - 1, dim / heads])
    }

    func callAsFunction(_ x: B.Value) -> B.Value {
        let shape = backend.shape(x)
        let (batch, height, width, dim) = (shape[0], shape[1], shape[2], shape[3])
        let headDim = dim / heads
        // qkv: [B, H*W, 3, heads, head dim] -> 3 x [B, heads, H*W, head dim], as views.
        let qkv = backend.permute(backend.reshape(self.qkv(x), [batch, height * width, 3, heads, headDim]), [2, 0, 3, 1, 4])
        let q = backend.select(qkv, dim: 0, 0), k = backend.select(qkv, dim: 0, 1), v = backend.select(qkv, dim: 0, 2)
        // The reference scales q before q k^T, but adds rel-pos terms of the unscaled q.
        let relative = backend.relativePositionBias(q: q, tableH: relPosH, tableW: relPosW,
                                                    queryGrid: (height, width), keyGrid: (height, width))
        let out = backend.attention(q: q, k: k, v: v, AttentionOptions(scale: 1 / Float(headDim).squareRoot(), relativePosition: relative))
        return backend.reshape(proj(out), [batch, height, width, dim])
    }
}

/// `Block`: pre-norm attention (in windows, or global when `windowSize` is 0) and MLP.
struct ViTBlock<B: Backend>: Sendable {
    let backend: B
    let norm1: LayerNorm<B>
    let attn: ViTAttention<B>
    let norm2: LayerNorm<B>
    let mlp: MLPBlock<B>
    let windowSize: Int

    init(_ w: Weights<B>, dim: Int, gridSize: Int) throws {
        backend = w.backend
        let table = try w.requireShape("attn.rel_pos_h", rank: 2)
        guard table[1] > 0, dim % table[1] == 0, table[0] % 2 == 1 else {
            throw SamError.unrecognized(file: w.reader.stateDict.path,
                                        reason: "'\(w.prefix)attn.rel_pos_h' has shape \(table); expected [2 * window - 1, head dim] with head dim dividing \(dim)")
        }
        let span = (table[0] + 1) / 2
        windowSize = span == gridSize ? 0 : span
        norm1 = try LayerNorm(w.scope("norm1"), channels: dim, eps: 1e-6)
        attn = try ViTAttention(w.scope("attn"), dim: dim, heads: dim / table[1], inputSize: span)
        norm2 = try LayerNorm(w.scope("norm2"), channels: dim, eps: 1e-6)
        let mlpDim = try w.requireShape("mlp.lin1.weight", rank: 2)[0]
        mlp = try MLPBlock(w.scope("mlp"), embeddingDim: dim, mlpDim: mlpDim, activation: .gelu)
    }

    func callAsFunction(_ x: B.Value) -> B.Value {
        let shortcut = x
        var x = norm1(x)
        if windowSize > 0 {
            let shape = backend.shape(x)
            let (windows, padded) = backend.windowPartition(x, size: windowSize)
            x = backend.windowUnpartition(attn(windows), size: windowSize, padded: padded, original: (shape[1], shape[2]))
        } else {
            x = attn(x)
        }
        x = backend.binary(shortcut, .add, x)
        return backend.binary(x, .add, mlp(norm2(x)))
    }
}

/// `ImageEncoderViT`: a 1024x1024 image to a `[1, 256, 64, 64]` embedding.
public struct ImageEncoderViT<B: Backend>: Sendable {
    let backend: B
    public let embedDim: Int
    public let patchSize: Int
    public let globalBlocks: [Int]
    let patchEmbed: Conv2d<B>
    let posEmbed: B.Value
    let blocks: [ViTBlock<B>]
    let neck: Neck<B>

    init(_ w: Weights<B>, imageSize: Int) throws {
        backend = w.backend
        let proj = try w.requireShape("patch_embed.proj.weight", rank: 4)
        embedDim = proj[0]
        patchSize = proj[2]
        guard proj[1] == 3, proj[2] == proj[3], patchSize > 0, imageSize % patchSize == 0 else {
            throw SamError.unrecognized(file: w.reader.stateDict.path,
                                        reason: "'\(w.prefix)patch_embed.proj.weight' has shape \(proj); expected [dim, 3, p, p] with p dividing \(imageSize)")
        }
        let grid = imageSize / patchSize
        patchEmbed = try Conv2d(w.scope("patch_embed.proj"), input: 3, output: embedDim, kernel: patchSize,
                                Conv2dOptions(stride: patchSize))
        posEmbed = try w("pos_embed", [1, grid, grid, embedDim])
        let depth = w.count("blocks")
        guard depth > 0 else { throw SamError.unrecognized(file: w.reader.stateDict.path, reason: "no '\(w.prefix)blocks.*' tensors") }
        let dim = embedDim
        let blocks = try (0..<depth).map { try ViTBlock(w.scope("blocks.\($0)"), dim: dim, gridSize: grid) }
        self.blocks = blocks
        globalBlocks = blocks.indices.filter { blocks[$0].windowSize == 0 }
        neck = try Neck(w.scope("neck"), input: embedDim)
    }

    /// `x`: the normalized, padded image `[1, 3, 1024, 1024]`.
    func callAsFunction(_ x: B.Value) -> B.Value {
        var x = backend.permute(patchEmbed(x), [0, 2, 3, 1])  // B C H W -> B H W C
        x = backend.binary(x, .add, posEmbed)
        for block in blocks { x = block(x) }
        x = backend.permute(x, [0, 3, 1, 2])
        return neck(x)
    }

    /// The blocks, described: `12 blocks of 768, 12 heads, windows of 14, global at [2, 5, 8, 11]`.
    var summary: String {
        let window = blocks.first { $0.windowSize > 0 }?.windowSize ?? 0
        return "ViT, \(blocks.count) blocks of \(embedDim), \(blocks[0].attn.heads) heads, windows of \(window), global at \(globalBlocks)"
    }
}
