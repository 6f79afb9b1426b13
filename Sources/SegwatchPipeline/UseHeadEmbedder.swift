// The USE head in the labeling: what it reads of a frame (CLIP's hidden states at its levels and
// pooled image embedding from the pass that gives the dense features, and DINOv2's hidden states
// and class token), pooled per segment by its mask's coverage of each model's own grid, then
// the head (`UseHead`) into the text space.
import SegwatchCLIP
import SegwatchDINOv2
import SegwatchSAM
import SegwatchTensor
import SegwatchUSE

/// One frame's inputs of the USE head beyond CLIP's dense features.
public struct HeadFrameFeatures: Sendable {
    /// `[P, Dc]` each: CLIP's hidden states after the head's blocks, patch rows only, on the
    /// dense features' grid (their window's patches when they have one).
    public var clipLevels: [Tensor]
    /// `[E]`: CLIP's pooled image embedding, from the same pass.
    public var clipImage: Tensor
    /// `[Pd, Dd]` each: DINOv2's hidden states after the head's layers, patch rows only (no
    /// class token, no registers), on DINOv2's own grid over the whole frame.
    public var dinoLevels: [Tensor]
    public var dinoGrid: (h: Int, w: Int)
    /// `[Dd]`: DINOv2's pooler output (the class token after the final LayerNorm).
    public var dinoCLS: Tensor
    /// The time DINOv2 took, resize included.
    public var dinoMilliseconds: Double

    public init(clipLevels: [Tensor], clipImage: Tensor, dinoLevels: [Tensor], dinoGrid: (h: Int, w: Int), dinoCLS: Tensor,
                dinoMilliseconds: Double = 0) {
        (self.clipLevels, self.clipImage, self.dinoLevels, self.dinoGrid, self.dinoCLS) = (clipLevels, clipImage, dinoLevels, dinoGrid, dinoCLS)
        self.dinoMilliseconds = dinoMilliseconds
    }
}

/// The learned part of a segment embedding.
public enum LearnedHead<B: Backend>: Sendable {
    /// A linear map of the pooled CLIP features (the first head file format: `proj.weight`).
    case linear(SegmentHead)
    /// The USE head, with the DINOv2 model its levels come from.
    case use(UseHead, dino: Dinov2Model<B>)

    /// The USE head, with the DINOv2 model it reads, checked against CLIP: the widths, the
    /// levels and (where the head names them) the checkpoints' digests. `warn` hears about a
    /// head without digests.
    public static func use(_ head: UseHead, dino: Dinov2Model<B>, clip: CLIP<B>, clipDigest: String?, dinoDigest: String?,
                           warn: (String) -> Void) throws -> LearnedHead {
        if let warning = try head.check(clipWidth: clip.config.vision.width, embed: clip.config.embedDim, clipDigest: clipDigest,
                                        dinoWidth: dino.config.hiddenSize, dinoDigest: dinoDigest) {
            warn(warning)
        }
        if let level = head.clipLevels.first(where: { !(0...clip.vision.depth).contains($0) }) {
            throw PipelineError.mismatch("the head reads CLIP's block \(level); this CLIP has blocks 1...\(clip.vision.depth)")
        }
        if let level = head.dinoLevels.first(where: { !(0...dino.config.layers).contains($0) }) {
            throw PipelineError.mismatch("the head reads DINOv2's layer \(level); this DINOv2 has layers 1...\(dino.config.layers)")
        }
        return .use(head, dino: dino)
    }
}

/// Segment embeddings through the USE head: each mask's averages of the dense features, of
/// CLIP's levels (its coverage of CLIP's grid) and of DINOv2's levels (its coverage of DINOv2's
/// grid), with the frame's two image tokens, into `UseHead`.
public struct UseHeadEmbedder: SegmentEmbedder {
    public let head: UseHead

    public init(head: UseHead) {
        self.head = head
    }

    public func embed(_ features: DenseFeatures, masks: [RLE]) throws(PipelineError) -> [[Float]?] {
        let (input, present) = try headInputs(features, masks: masks)
        guard !present.isEmpty else { return masks.map { _ in nil } }
        let z: Tensor
        do { z = try head(input) } catch { throw .mismatch("\(error)") }
        let width = z.shape[1], values = z.toArray()
        var out = [[Float]?](repeating: nil, count: masks.count)
        for (i, n) in present.enumerated() { out[n] = Array(values[(i * width)..<((i + 1) * width)]) }
        return out
    }
}

/// The USE head's inputs of the masks that cover some patch of both grids (`present`, their
/// indices in `masks`): the averages of the dense features and of CLIP's levels by each mask's
/// coverage of CLIP's grid, of DINOv2's levels by its coverage of DINOv2's grid, and the frame's
/// two image tokens.
public func headInputs(_ features: DenseFeatures, masks: [RLE]) throws(PipelineError) -> (input: UseHeadInput, present: [Int]) {
    guard let frame = features.head else { throw .mismatch("the USE head needs CLIP's levels and DINOv2's features of the frame") }
    let clip = try CoverageWeights(masks, frame: features.frame, window: features.window)
    let dinoGrid = PatchWindow(grid: frame.dinoGrid, rows: 0..<frame.dinoGrid.h, columns: 0..<frame.dinoGrid.w)
    let dino = try CoverageWeights(masks, frame: features.frame, window: dinoGrid)
    let present = masks.indices.filter { clip.totals[$0] > 0 && dino.totals[$0] > 0 }
    func rows(_ t: Tensor) -> Tensor { concat(present.map { t.sliced(0, $0..<($0 + 1)) }, dim: 0) }
    func repeated(_ t: Tensor) -> Tensor { concat(Array(repeating: t.reshaped([1, t.count]), count: present.count), dim: 0) }
    func stacked(_ levels: [Tensor], _ weights: CoverageWeights) -> Tensor {
        concat(levels.map { rows(weights.average($0)).reshaped([1, present.count, $0.shape[1]]) }, dim: 0)
    }
    guard !present.isEmpty else {
        let empty = Tensor(shape: [0, features.dimension], values: [])
        return (UseHeadInput(use: empty, clipLevels: empty, dinoLevels: empty, clipImage: empty, dinoCLS: empty), [])
    }
    return (UseHeadInput(use: rows(clip.average(features.values)), clipLevels: stacked(frame.clipLevels, clip),
                         dinoLevels: stacked(frame.dinoLevels, dino), clipImage: repeated(frame.clipImage), dinoCLS: repeated(frame.dinoCLS)),
            present)
}
