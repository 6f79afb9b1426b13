// Ports segment_anything/modeling/prompt_encoder.py (PromptEncoder, PositionEmbeddingRandom).
//
// Sparse prompts are a handful of tokens: they are embedded on the host and uploaded. The
// dense positional encoding of the 64x64 grid is computed once at load.
import Foundation
import SegwatchNN
import SegwatchTensor

/// One prompt, in the model's input frame (the resized image, before padding; not yet shifted
/// to pixel centres): points with labels (1 foreground, 0 background), an optional box, and an
/// optional `[1, 256, 256]` mask of low-resolution logits.
///
/// Coordinates are float64 because the automatic mask generator's are until the prompt
/// encoder casts them (`SamPredictor.predict` casts to float32 first: see `SamPredictor`).
public struct SamPrompt: Sendable {
    public var points: [(x: Double, y: Double, label: Int)]
    public var box: (x0: Double, y0: Double, x1: Double, y1: Double)?
    public var maskInput: Tensor?

    public init(points: [(x: Double, y: Double, label: Int)] = [], box: (x0: Double, y0: Double, x1: Double, y1: Double)? = nil,
                maskInput: Tensor? = nil) {
        self.points = points
        self.box = box
        self.maskInput = maskInput
    }

    /// Sparse tokens this prompt makes: its points, the padding point when there are points but
    /// no box, and two box corners.
    public var tokenCount: Int {
        (points.isEmpty ? 0 : points.count + (box == nil ? 1 : 0)) + (box == nil ? 0 : 2)
    }
}

/// `PositionEmbeddingRandom`: random Fourier features of coordinates in [0, 1].
struct PositionEmbeddingRandom: Sendable {
    /// `positional_encoding_gaussian_matrix`, `[2, features]`, row-major.
    let gaussian: [Float]
    let features: Int

    /// `_pe_encoding` of one normalized coordinate: `[sin(2 pi (2c - 1) G), cos(...)]`.
    func encode(x: Float, y: Float, into out: UnsafeMutablePointer<Float>) {
        let cx = 2 * x - 1, cy = 2 * y - 1
        let twoPi = Float(2 * Double.pi)
        for j in 0..<features {
            let v = twoPi * (cx * gaussian[j] + cy * gaussian[features + j])
            out[j] = sin(v)
            out[features + j] = cos(v)
        }
    }

    /// `forward(size)`: the encoding of every cell centre of an `h x w` grid, `[2F, h, w]`.
    func grid(h: Int, w: Int) -> Tensor {
        var cell = [Float](repeating: 0, count: 2 * features)
        let result = Tensor(uninitialized: [1, 2 * features, h, w])
        for y in 0..<h {
            for x in 0..<w {
                // The reference builds the grid in float32: cumsum - 0.5, then / size.
                encode(x: (Float(x + 1) - 0.5) / Float(w), y: (Float(y + 1) - 0.5) / Float(h), into: &cell)
                for c in 0..<2 * features { result.pointer[(c * h + y) * w + x] = cell[c] }
            }
        }
        return result
    }
}

public struct PromptEncoder<B: Backend>: Sendable {
    let backend: B
    public let embedDim: Int
    let imageEmbeddingSize: (h: Int, w: Int)
    let inputImageSize: (h: Int, w: Int)
    let peLayer: PositionEmbeddingRandom
    /// `point_embeddings.{0..3}`: background, foreground, box top-left, box bottom-right.
    let pointEmbeddings: [[Float]]
    let notAPointEmbed: [Float]
    let noMaskEmbed: B.Value
    let maskDownscaling: (Conv2d<B>, LayerNorm2d<B>, Conv2d<B>, LayerNorm2d<B>, Conv2d<B>)
    /// `get_dense_pe()`, flattened as the transformer reads it: `[1, 64 * 64, embed]`.
    let denseImagePETokens: B.Value

    init(_ w: Weights<B>, embedDim: Int, imageEmbeddingSize: (h: Int, w: Int), inputImageSize: (h: Int, w: Int)) throws {
        backend = w.backend
        self.embedDim = embedDim
        self.imageEmbeddingSize = imageEmbeddingSize
        self.inputImageSize = inputImageSize
        let features = embedDim / 2
        peLayer = PositionEmbeddingRandom(gaussian: try w.host("pe_layer.positional_encoding_gaussian_matrix", [2, features]).toArray(),
                                          features: features)
        pointEmbeddings = try (0..<4).map { try w.host("point_embeddings.\($0).weight", [1, embedDim]).toArray() }
        notAPointEmbed = try w.host("not_a_point_embed.weight", [1, embedDim]).toArray()
        noMaskEmbed = try w("no_mask_embed.weight", [1, embedDim])
        let maskChannels = try w.requireShape("mask_downscaling.3.weight", rank: 4)[0]
        maskDownscaling = (try Conv2d(w.scope("mask_downscaling.0"), input: 1, output: maskChannels / 4, kernel: 2, Conv2dOptions(stride: 2)),
                           try LayerNorm2d(w.scope("mask_downscaling.1"), channels: maskChannels / 4),
                           try Conv2d(w.scope("mask_downscaling.3"), input: maskChannels / 4, output: maskChannels, kernel: 2, Conv2dOptions(stride: 2)),
                           try LayerNorm2d(w.scope("mask_downscaling.4"), channels: maskChannels),
                           try Conv2d(w.scope("mask_downscaling.6"), input: maskChannels, output: embedDim, kernel: 1))
        let pe = peLayer.grid(h: imageEmbeddingSize.h, w: imageEmbeddingSize.w)
        denseImagePETokens = backend.upload(pe.reshaped([1, embedDim, imageEmbeddingSize.h * imageEmbeddingSize.w]).permuted([0, 2, 1]).contiguous())
    }

    /// The size mask inputs must have: 4x the embedding grid.
    public var maskInputSize: (h: Int, w: Int) { (4 * imageEmbeddingSize.h, 4 * imageEmbeddingSize.w) }

    /// Sparse embeddings `[B, T, embed]` of prompts that all make `T` tokens.
    func sparseEmbeddings(_ prompts: [SamPrompt]) -> B.Value {
        let tokens = prompts[0].tokenCount
        precondition(prompts.allSatisfy { $0.tokenCount == tokens }, "prompts of one batch make different token counts")
        var values = [Float](repeating: 0, count: prompts.count * tokens * embedDim)
        values.withUnsafeMutableBufferPointer { values in
            for (b, prompt) in prompts.enumerated() {
                var token = values.baseAddress! + b * tokens * embedDim
                func add(_ embedding: [Float]) {
                    for c in 0..<embedDim { token[c] += embedding[c] }
                }
                func encode(_ x: Double, _ y: Double) {
                    // `+ 0.5` to the pixel centre and normalized by the input size in the
                    // coordinates' precision, then `.to(torch.float)` for the encoding.
                    peLayer.encode(x: Float((x + 0.5) / Double(inputImageSize.w)), y: Float((y + 0.5) / Double(inputImageSize.h)), into: token)
                }
                // _embed_points
                for point in prompt.points {
                    encode(point.x, point.y)
                    if point.label == 0 || point.label == 1 { add(pointEmbeddings[point.label]) }
                    token += embedDim
                }
                if !prompt.points.isEmpty && prompt.box == nil {
                    // The padding point: its encoding is zeroed and replaced by not_a_point_embed.
                    add(notAPointEmbed)
                    token += embedDim
                }
                // _embed_boxes
                if let box = prompt.box {
                    encode(box.x0, box.y0)
                    add(pointEmbeddings[2])
                    token += embedDim
                    encode(box.x1, box.y1)
                    add(pointEmbeddings[3])
                }
            }
        }
        return backend.upload(Tensor(shape: [prompts.count, tokens, embedDim], values: values))
    }

    /// Dense embeddings `[B, embed, 64, 64]` of prompts that all have a mask input, or nil when
    /// none has one (every position then gets `no_mask_embed`: see `denseNoMask`).
    func denseEmbeddings(_ prompts: [SamPrompt]) -> B.Value? {
        let masks = prompts.compactMap(\.maskInput)
        guard !masks.isEmpty else { return nil }
        precondition(masks.count == prompts.count, "a batch mixes prompts with and without mask input")
        let size = maskInputSize
        let batch = backend.concat(masks.map { backend.upload($0.reshaped([1, 1, size.h, size.w])) }, dim: 0)
        let m = maskDownscaling
        var x = backend.activate(m.1(m.0(batch)), .gelu)
        x = backend.activate(m.3(m.2(x)), .gelu)
        return m.4(x)
    }

    /// `no_mask_embed` at every position: `[1, embed, 1, 1]`, broadcast by the decoder's add.
    var denseNoMask: B.Value { backend.reshape(noMaskEmbed, [1, embedDim, 1, 1]) }
}
