// Ports segment_anything/modeling/mask_decoder.py (MaskDecoder, MLP).
import SegwatchNN
import SegwatchTensor

/// `MLP` of mask_decoder.py: linear layers with ReLU between them.
struct DecoderMLP<B: Backend>: Sendable {
    let backend: B
    let layers: [Linear<B>]

    init(_ w: Weights<B>) throws {
        backend = w.backend
        let count = w.count("layers")
        guard count > 0 else { throw SamError.unrecognized(file: w.reader.stateDict.path, reason: "no '\(w.prefix)layers.*' tensors") }
        layers = try (0..<count).map {
            let shape = try w.requireShape("layers.\($0).weight", rank: 2)
            return try Linear(w.scope("layers.\($0)"), input: shape[1], output: shape[0])
        }
    }

    var outputDim: Int { backend.shape(layers[layers.count - 1].weight)[0] }

    func callAsFunction(_ x: B.Value) -> B.Value {
        var x = x
        for (i, layer) in layers.enumerated() {
            x = layer(x)
            if i < layers.count - 1 { x = backend.activate(x, .relu) }
        }
        return x
    }
}

/// What the mask decoder returns for a batch of B prompts.
public struct DecoderOutput<Value: Sendable>: Sendable {
    /// `[B, C, 256, 256]` mask logits; C is 3 with multimask output, else 1.
    public var lowResLogits: Value
    /// `[B, C]` predicted IoU of each mask.
    public var iouPredictions: Value
}

public struct MaskDecoder<B: Backend>: Sendable {
    let backend: B
    public let transformerDim: Int
    let transformer: TwoWayTransformer<B>
    /// `[iou_token; mask_tokens]`: `[1 + masks, C]`.
    let outputTokens: B.Value
    let numMaskTokens: Int
    /// `output_upscaling` on channels-last rows (see `upscaledMasks`).
    let upscaling: (first: (weight: B.Value, bias: B.Value), norm: LayerNorm2d<B>, second: (weight: B.Value, bias: B.Value))
    let outputHypernetworksMLPs: [DecoderMLP<B>]
    let iouPredictionHead: DecoderMLP<B>

    init(_ w: Weights<B>) throws {
        backend = w.backend
        let tokens = try w.requireShape("mask_tokens.weight", rank: 2)
        numMaskTokens = tokens[0]
        transformerDim = tokens[1]
        guard numMaskTokens >= 2, transformerDim % 8 == 0 else {
            throw SamError.unrecognized(file: w.reader.stateDict.path, reason: "'\(w.prefix)mask_tokens.weight' has shape \(tokens); expected [1 + multimask outputs, C]")
        }
        transformer = try TwoWayTransformer(w.scope("transformer"), embeddingDim: transformerDim)
        outputTokens = backend.concat([try w("iou_token.weight", [1, transformerDim]), try w("mask_tokens.weight", [numMaskTokens, transformerDim])], dim: 0)
        let outputUpscaling = (try ConvTranspose2d(w.scope("output_upscaling.0"), input: transformerDim, output: transformerDim / 4, stride: 2),
                               try LayerNorm2d(w.scope("output_upscaling.1"), channels: transformerDim / 4),
                               try ConvTranspose2d(w.scope("output_upscaling.3"), input: transformerDim / 4, output: transformerDim / 8, stride: 2))
        upscaling = (outputUpscaling.0.childrenLinear, outputUpscaling.1, outputUpscaling.2.childrenLinear)
        outputHypernetworksMLPs = try (0..<numMaskTokens).map { try DecoderMLP(w.scope("output_hypernetworks_mlps.\($0)")) }
        iouPredictionHead = try DecoderMLP(w.scope("iou_prediction_head"))
        guard iouPredictionHead.outputDim == numMaskTokens, outputHypernetworksMLPs.allSatisfy({ $0.outputDim == transformerDim / 8 }) else {
            throw SamError.unrecognized(file: w.reader.stateDict.path, reason: "the IoU head or a hypernetwork MLP has the wrong output width")
        }
    }

    /// `[n, C, h, w]` as rows of channels, `[n, h * w, C]` (the reference's `flatten(2).permute(0, 2, 1)`).
    func channelRows(_ x: B.Value) -> B.Value {
        let s = backend.shape(x)
        return backend.contiguous(backend.permute(backend.reshape(x, [s[0], s[1], s[2] * s[3]]), [0, 2, 1]))
    }

    /// Prompts whose upscaled embeddings (`[32, 256, 256]` each) exist at once.
    static var upscalingChunk: Int { 4 }

    /// The first transformer block's image side for prompts that all meet `dense`, one
    /// `[1, C, h or 1, w or 1]` embedding (no mask input): computed once for all their batches.
    func imageSide(imageRows: B.Value, keyPE: B.Value, dense: B.Value) -> DecoderImageSide<B.Value> {
        transformer.layers[0].imageSide(keys: backend.binary(imageRows, .add, channelRows(dense)), keyPE: keyPE)
    }

    /// `forward` for B prompts against one image: `imageRows`, the `[1, C, h, w]` embedding
    /// as rows of channels `[1, h * w, C]` on a `grid` of `[h, w]`; `keyPE` `[1, h * w, C]`,
    /// `sparse` `[B, T, C]`, `dense` `[1 or B, C, h or 1, w or 1]`; `shared`, when given, the
    /// image side `imageSide` made of the same image rows and (batch 1) `dense`.
    func callAsFunction(imageRows: B.Value, grid: [Int], keyPE: B.Value, sparse: B.Value, dense: B.Value,
                        shared: DecoderImageSide<B.Value>? = nil, multimask: Bool) -> DecoderOutput<B.Value> {
        let batch = backend.shape(sparse)[0]
        // predict_masks
        let output = backend.expand(backend.reshape(outputTokens, [1, numMaskTokens + 1, transformerDim]),
                                    [batch, numMaskTokens + 1, transformerDim])
        let tokens = backend.concat([output, sparse], dim: 1)
        // The reference repeats the image per prompt; adding the dense embedding broadcasts instead.
        let src = shared?.keys ?? backend.binary(imageRows, .add, channelRows(dense))
        let (hs, keys) = transformer(image: src, keyPE: keyPE, pointEmbedding: tokens, shared: shared)

        // Only the masks returned are computed: 1..<4 with multimask output, else 0.
        let selected = multimask ? 1..<numMaskTokens : 0..<1
        let hyperIn = backend.concat(selected.map { i in
            let token = backend.select(hs, dim: 1, 1 + i)                       // [B, C]
            return backend.reshape(outputHypernetworksMLPs[i](token), [batch, 1, transformerDim / 8])
        }, dim: 1)                                                              // [B, masks, C/8]
        // Upscaling, a few prompts at a time: 64 prompts' upscaled embeddings are half a gigabyte.
        var masks: [B.Value] = []
        for start in stride(from: 0, to: batch, by: Self.upscalingChunk) {
            let chunk = start..<min(batch, start + Self.upscalingChunk)
            masks.append(upscaledMasks(keys: backend.slice(keys, dim: 0, chunk), hyperIn: backend.slice(hyperIn, dim: 0, chunk), grid: grid))
        }
        let iou = iouPredictionHead(backend.select(hs, dim: 1, 0))             // [B, 1 + masks]
        return DecoderOutput(lowResLogits: masks.count == 1 ? masks[0] : backend.concat(masks, dim: 0),
                             iouPredictions: backend.slice(iou, dim: 1, selected))
    }

    /// `output_upscaling` and the hypernetwork product for `[b, h * w, C]` channels-last keys.
    ///
    /// A transposed convolution with kernel == stride 2 maps each pixel's channels to its 2x2
    /// children's independently, so both run as plain products on `[pixels, channels]` rows,
    /// and the LayerNorm2d over a child's channels is a LayerNorm over a row. The children stay
    /// beside their parent, `(y, x, ky, kx, ky2, kx2)`, until the masks, a few channels where
    /// the embeddings have 32, are put in raster order: no image-sized transposition.
    private func upscaledMasks(keys: B.Value, hyperIn: B.Value, grid: [Int]) -> B.Value {
        let b = backend
        let (batch, masks) = (b.shape(keys)[0], b.shape(hyperIn)[1])
        let (first, norm, second) = upscaling
        var x = b.linear(keys, weight: first.weight, bias: first.bias)                        // [b, hw, 4 * C/4]
        x = b.activate(b.layerNorm(b.reshape(x, [batch, grid[0] * grid[1] * 4, transformerDim / 4]),
                                   weight: norm.weight, bias: norm.bias, eps: norm.eps), .gelu)
        x = b.linear(x, weight: second.weight, bias: second.bias, activation: .gelu)         // [b, hw * 4, 4 * C/8]
        let children = b.reshape(x, [batch, grid[0] * grid[1] * 16, transformerDim / 8])
        let product = b.matmul(hyperIn, b.permute(children, [0, 2, 1]))                         // [b, masks, hw * 16]
        let raster = b.permute(b.reshape(product, [batch, masks, grid[0], grid[1], 2, 2, 2, 2]), [0, 1, 2, 4, 6, 3, 5, 7])
        return b.reshape(b.contiguous(raster), [batch, masks, grid[0] * 4, grid[1] * 4])
    }
}
