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
    let outputUpscaling: (ConvTranspose2d<B>, LayerNorm2d<B>, ConvTranspose2d<B>)
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
        outputUpscaling = (try ConvTranspose2d(w.scope("output_upscaling.0"), input: transformerDim, output: transformerDim / 4, stride: 2),
                           try LayerNorm2d(w.scope("output_upscaling.1"), channels: transformerDim / 4),
                           try ConvTranspose2d(w.scope("output_upscaling.3"), input: transformerDim / 4, output: transformerDim / 8, stride: 2))
        outputHypernetworksMLPs = try (0..<numMaskTokens).map { try DecoderMLP(w.scope("output_hypernetworks_mlps.\($0)")) }
        iouPredictionHead = try DecoderMLP(w.scope("iou_prediction_head"))
        guard iouPredictionHead.outputDim == numMaskTokens, outputHypernetworksMLPs.allSatisfy({ $0.outputDim == transformerDim / 8 }) else {
            throw SamError.unrecognized(file: w.reader.stateDict.path, reason: "the IoU head or a hypernetwork MLP has the wrong output width")
        }
    }

    /// Prompts whose upscaled embeddings (`[32, 256, 256]` each) exist at once.
    static var upscalingChunk: Int { 4 }

    /// `forward` for B prompts against one image: `imageEmbedding` `[1, C, h, w]`, `keyPE`
    /// `[1, h * w, C]`, `sparse` `[B, T, C]`, `dense` `[1 or B, C, h or 1, w or 1]`.
    func callAsFunction(imageEmbedding: B.Value, keyPE: B.Value, sparse: B.Value, dense: B.Value,
                        multimask: Bool) -> DecoderOutput<B.Value> {
        let batch = backend.shape(sparse)[0]
        // predict_masks
        let output = backend.expand(backend.reshape(outputTokens, [1, numMaskTokens + 1, transformerDim]),
                                    [batch, numMaskTokens + 1, transformerDim])
        let tokens = backend.concat([output, sparse], dim: 1)
        // The reference repeats the image per prompt; adding the dense embedding broadcasts instead.
        let src = backend.binary(imageEmbedding, .add, dense)
        let (hs, keys) = transformer(imageEmbedding: src, keyPE: keyPE, pointEmbedding: tokens)
        let grid = Array(backend.shape(imageEmbedding).suffix(2))

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
            let image = backend.reshape(backend.permute(backend.slice(keys, dim: 0, chunk), [0, 2, 1]), [chunk.count, transformerDim] + grid)
            let up = outputUpscaling
            var upscaled = backend.activate(up.1(up.0(image)), .gelu)
            upscaled = backend.activate(up.2(upscaled), .gelu)
            let s = backend.shape(upscaled)
            let product = backend.matmul(backend.slice(hyperIn, dim: 0, chunk), backend.reshape(upscaled, [s[0], s[1], s[2] * s[3]]))
            masks.append(backend.reshape(product, [chunk.count, selected.count, s[2], s[3]]))
        }
        let iou = iouPredictionHead(backend.select(hs, dim: 1, 0))             // [B, 1 + masks]
        return DecoderOutput(lowResLogits: masks.count == 1 ? masks[0] : backend.concat(masks, dim: 0),
                             iouPredictions: backend.slice(iou, dim: 1, selected))
    }
}
