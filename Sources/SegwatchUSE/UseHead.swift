// The USE segment-embedding head, as `head_forward` of ../shared/fixtures/make/use_fixtures.py
// defines it (the fixture's README quotes it): the training-free USE embedding, normalized, plus a
// learned residual from multi-level CLIP and DINOv2 patch features pooled by the mask and the two
// image-level tokens, normalized again.
//
//     u   = use / |use|
//     m_c = sum_i clip.scale[i] * LN_i(clip_levels[i])      (patch rows, pooled by coverage)
//     m_d = sum_i dino.scale[i] * LN_i(dino_levels[i])      (on DINOv2's grid; no CLS, no registers)
//     k_c = cls.scale[0] * LN(clip_image)                   (CLIP's pooled image embedding)
//     k_d = cls.scale[1] * LN(dino_cls)                     (DINOv2's pooler output)
//     z   = normalize(u + [m_c, m_d, k_c, k_d] proj.weight^T + proj.bias)
//     logits = exp(min(logit_scale, ln 100)) * z text^T
import Foundation
import SegwatchTensor

/// The sizes a head is made for.
public struct UseHeadShape: Sendable, Equatable, CustomStringConvertible {
    /// E: CLIP's joint space (the text embeddings' width).
    public var embed: Int
    /// Dc: CLIP's vision width (its hidden states').
    public var clipWidth: Int
    /// Dd: DINOv2's width.
    public var dinoWidth: Int
    /// Lc, Ld: how many hidden states of each encoder the head reads (at least one each).
    public var clipLevels: Int
    public var dinoLevels: Int

    public init(embed: Int, clipWidth: Int, dinoWidth: Int, clipLevels: Int, dinoLevels: Int) {
        (self.embed, self.clipWidth, self.dinoWidth, self.clipLevels, self.dinoLevels) = (embed, clipWidth, dinoWidth, clipLevels, dinoLevels)
    }

    /// The width of `[m_c, m_d, k_c, k_d]`.
    public var features: Int { clipWidth + dinoWidth + embed + dinoWidth }

    /// Every parameter's name and shape, in the reference's order (`head_param_shapes`).
    public var parameters: [(name: String, shape: [Int])] {
        var list: [(String, [Int])] = []
        for i in 0..<clipLevels { list += [("clip.norm.\(i).weight", [clipWidth]), ("clip.norm.\(i).bias", [clipWidth])] }
        for i in 0..<dinoLevels { list += [("dino.norm.\(i).weight", [dinoWidth]), ("dino.norm.\(i).bias", [dinoWidth])] }
        list += [("clip.scale", [clipLevels]), ("dino.scale", [dinoLevels]),
                 ("cls.clip.norm.weight", [embed]), ("cls.clip.norm.bias", [embed]),
                 ("cls.dino.norm.weight", [dinoWidth]), ("cls.dino.norm.bias", [dinoWidth]), ("cls.scale", [2]),
                 ("proj.weight", [embed, features]), ("proj.bias", [embed]), ("logit_scale", [])]
        return list
    }

    public var description: String {
        "E \(embed), CLIP \(clipLevels) levels of \(clipWidth), DINOv2 \(dinoLevels) levels of \(dinoWidth)"
    }
}

/// One batch of B segments, every input already pooled per segment (`head_forward`'s).
public struct UseHeadInput: Sendable {
    /// `[B, E]`: the training-free USE embedding before normalization.
    public var use: Tensor
    /// `[Lc, B, Dc]`: CLIP's hidden states after the head's blocks, pooled by coverage.
    public var clipLevels: Tensor
    /// `[Ld, B, Dd]`: DINOv2's hidden states after the head's layers, pooled on its grid.
    public var dinoLevels: Tensor
    /// `[B, E]`: CLIP's pooled image embedding of each segment's picture.
    public var clipImage: Tensor
    /// `[B, Dd]`: DINOv2's pooler output of that picture.
    public var dinoCLS: Tensor

    public init(use: Tensor, clipLevels: Tensor, dinoLevels: Tensor, clipImage: Tensor, dinoCLS: Tensor) {
        (self.use, self.clipLevels, self.dinoLevels, self.clipImage, self.dinoCLS) = (use, clipLevels, dinoLevels, clipImage, dinoCLS)
    }

    public var count: Int { use.shape[0] }

    /// Checks every shape against `shape`.
    public func validate(_ shape: UseHeadShape) throws(USEError) {
        let b = count
        let expected: [(String, Tensor, [Int])] = [
            ("use", use, [b, shape.embed]), ("clip levels", clipLevels, [shape.clipLevels, b, shape.clipWidth]),
            ("DINOv2 levels", dinoLevels, [shape.dinoLevels, b, shape.dinoWidth]), ("CLIP image embedding", clipImage, [b, shape.embed]),
            ("DINOv2 class token", dinoCLS, [b, shape.dinoWidth]),
        ]
        for (name, tensor, want) in expected where tensor.shape != want {
            throw .mismatch("the head (\(shape)) takes the \(name) as \(want) for \(b) segments, not \(tensor.shape)")
        }
    }
}

/// A USE head: its parameters by name, and the encoders' levels and digests it was trained with.
public struct UseHead: Sendable {
    public let shape: UseHeadShape
    /// Every parameter of `shape.parameters`, contiguous, owned by this head.
    public internal(set) var parameters: [String: Tensor]
    /// CLIP's and DINOv2's hidden states the head reads: block numbers, 1-based as in
    /// `hidden_states`.
    public var clipLevels: [Int]
    public var dinoLevels: [Int]
    /// The checkpoints' digests (`CLIPFiles.digest`, `DINOv2Files.digest`, hexadecimal); nil
    /// in test data.
    public var clipDigest: String?
    public var dinoDigest: String?

    /// The reference's LayerNorm eps and the clamp of `logit_scale` (ln 100).
    public static let eps: Float = 1e-5
    public static let maximumLogitScale = Float(Foundation.log(100.0))

    public init(shape: UseHeadShape, parameters: [String: Tensor], clipLevels: [Int], dinoLevels: [Int],
                clipDigest: String? = nil, dinoDigest: String? = nil) throws(USEError) {
        for (name, want) in shape.parameters {
            guard let tensor = parameters[name] else { throw .mismatch("the head (\(shape)) has no \(name)") }
            guard tensor.shape == want else { throw .mismatch("the head's \(name) is \(tensor.shape); expected \(want)") }
        }
        if let extra = parameters.keys.first(where: { name in !shape.parameters.contains { $0.name == name } }) {
            throw .mismatch("the head (\(shape)) has no parameter \(extra)")
        }
        guard clipLevels.count == shape.clipLevels, dinoLevels.count == shape.dinoLevels else {
            throw .mismatch("the head has \(shape.clipLevels) CLIP and \(shape.dinoLevels) DINOv2 levels; its level lists are \(clipLevels) and \(dinoLevels)")
        }
        self.shape = shape
        self.parameters = parameters.mapValues { $0.contiguous().copied() }
        (self.clipLevels, self.dinoLevels, self.clipDigest, self.dinoDigest) = (clipLevels, dinoLevels, clipDigest, dinoDigest)
    }

    /// A head whose residual is zero (`proj` all zeros), so that its embedding is exactly the
    /// training-free one: norms at 1 and 0, scales at 1, and `logitScale`.
    public static func trainingFree(_ shape: UseHeadShape, clipLevels: [Int], dinoLevels: [Int], logitScale: Float,
                                    clipDigest: String? = nil, dinoDigest: String? = nil) throws(USEError) -> UseHead {
        var parameters: [String: Tensor] = [:]
        for (name, size) in shape.parameters {
            let one = name.hasSuffix(".weight") && name != "proj.weight" || name.hasSuffix("scale") && name != "logit_scale"
            let value: Float = name == "logit_scale" ? logitScale : one ? 1 : 0
            parameters[name] = Tensor(shape: size, values: [Float](repeating: value, count: size.reduce(1, *)))
        }
        return try UseHead(shape: shape, parameters: parameters, clipLevels: clipLevels, dinoLevels: dinoLevels,
                           clipDigest: clipDigest, dinoDigest: dinoDigest)
    }

    func parameter(_ name: String) -> Tensor { parameters[name]! }

    /// The unit-norm embeddings `z` `[B, E]` of a batch.
    public func callAsFunction(_ input: UseHeadInput) throws(USEError) -> Tensor {
        try input.validate(shape)
        return forward(input).zTensor
    }

    /// What the forward pass keeps for the backward one. The products run in float32 (the
    /// backend's); LayerNorms, sums and the elementwise steps in double, which keeps the
    /// gradients within the reference's float32 error (its sums are pairwise, its LayerNorm
    /// fused; plain float32 loops here lose a few times more).
    struct Forward {
        /// Each LayerNorm's normalized input (before its affine; computed in double),
        /// `[B * width]`: the CLIP levels, the DINOv2 levels, then the CLIP image embedding and
        /// the DINOv2 class token.
        var normalized: [[Float]]
        /// `[B, F]`: `[m_c, m_d, k_c, k_d]`.
        var features: Tensor
        /// `|y|` per segment, and `z = y / |y|` `[B * E]`.
        var norms: [Double]
        var z: [Double]

        var zTensor: Tensor { Tensor(shape: [norms.count, z.count / max(norms.count, 1)], values: z.map { Float($0) }) }
    }

    /// The LayerNorms' inputs, in `Forward.normalized`'s order, with their parameters' prefix
    /// and the scale (group and slot) and columns of their term.
    func terms(_ input: UseHeadInput) -> [(x: Tensor, prefix: String, scale: String, slot: Int, column: Int)] {
        let (c, d, e) = (shape.clipWidth, shape.dinoWidth, shape.embed)
        return (0..<shape.clipLevels).map { (input.clipLevels.selected(0, $0), "clip.norm.\($0)", "clip.scale", $0, 0) }
            + (0..<shape.dinoLevels).map { (input.dinoLevels.selected(0, $0), "dino.norm.\($0)", "dino.scale", $0, c) }
            + [(input.clipImage, "cls.clip.norm", "cls.scale", 0, c + d), (input.dinoCLS, "cls.dino.norm", "cls.scale", 1, c + d + e)]
    }

    func forward(_ input: UseHeadInput) -> Forward {
        let batch = input.count, width = shape.features, embed = shape.embed
        let x = Tensor(shape: [batch, width], values: [Float](repeating: 0, count: batch * width))
        var normalized: [[Float]] = []
        for term in terms(input) {
            let xhat = normalizeRows(term.x, eps: Self.eps), columns = term.x.shape[1]
            let scale = Double(parameter(term.scale).toArray()[term.slot])
            let weight = parameter(term.prefix + ".weight").toArray().map { Double($0) }, bias = parameter(term.prefix + ".bias").toArray().map { Double($0) }
            let out = x.pointer + term.column
            parallelFor(batch, grain: 16) { rows in
                for b in rows {
                    for j in 0..<columns { out[b * width + j] += Float(scale * (Double(xhat[b * columns + j]) * weight[j] + bias[j])) }
                }
            }
            normalized.append(xhat)
        }
        // y = u + x proj^T + proj.bias, z = y / |y|.
        let residual = linear(x, weight: parameter("proj.weight"), bias: nil).toArray()
        let use = input.use.contiguous().toArray(), projBias = parameter("proj.bias").toArray()
        var norms = [Double](repeating: 0, count: batch), z = [Double](repeating: 0, count: batch * embed)
        for b in 0..<batch {
            let row = b * embed
            let useNorm = (0..<embed).reduce(0.0) { $0 + Double(use[row + $1]) * Double(use[row + $1]) }.squareRoot()
            for e in 0..<embed { z[row + e] = Double(use[row + e]) / useNorm + Double(residual[row + e]) + Double(projBias[e]) }
            norms[b] = (0..<embed).reduce(0.0) { $0 + z[row + $1] * z[row + $1] }.squareRoot()
            for e in 0..<embed { z[row + e] /= norms[b] }
        }
        return Forward(normalized: normalized, features: x, norms: norms, z: z)
    }
}

/// `(x - mean) / sqrt(var + eps)` per row of `x` `[B, D]` (a LayerNorm without its affine),
/// computed in double: `[B * D]`.
func normalizeRows(_ x: Tensor, eps: Float) -> [Float] {
    let (rows, width) = (x.shape[0], x.shape[1]), x = x.contiguous()
    var out = [Float](repeating: 0, count: rows * width)
    out.withUnsafeMutableBufferPointer { out in
        let (source, target) = (x.pointer, out.baseAddress!)
        parallelFor(rows, grain: 16) { range in
            for r in range {
                let row = source + r * width, line = target + r * width
                var mean = 0.0
                for j in 0..<width { mean += Double(row[j]) }
                mean /= Double(width)
                var variance = 0.0
                for j in 0..<width { variance += (Double(row[j]) - mean) * (Double(row[j]) - mean) }
                let inverse = 1 / (variance / Double(width) + Double(eps)).squareRoot()
                for j in 0..<width { line[j] = Float((Double(row[j]) - mean) * inverse) }
            }
        }
    }
    return out
}
