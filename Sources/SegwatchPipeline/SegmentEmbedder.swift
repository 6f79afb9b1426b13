// Segment embeddings in CLIP's joint space: the USE embedding of each mask of a frame.
import SegwatchSAM
import SegwatchTensor

/// One frame's CLIP patch features in the joint space (`clearclip_last_block`), and the size of
/// the frame they describe.
public struct DenseFeatures: Sendable {
    /// `[grid.h * grid.w, dimension]`, row-major.
    public let values: Tensor
    public let grid: (h: Int, w: Int)
    public let frame: (height: Int, width: Int)

    public var dimension: Int { values.shape[1] }

    /// `dense`: the vision tower's `[1, grid.h, grid.w, D]` output.
    public init(dense: Tensor, frame: (height: Int, width: Int)) {
        precondition(dense.rank == 4 && dense.shape[0] == 1, "dense features \(dense.shape); expected [1, h, w, D]")
        grid = (dense.shape[1], dense.shape[2])
        values = dense.contiguous().reshaped([grid.h * grid.w, dense.shape[3]])
        self.frame = frame
    }
}

/// Frame features and N masks in, N unit-norm embeddings in CLIP's joint space out. A mask
/// that covers no patch area gets nil: it has no embedding, and no NaN stands in for one.
public protocol SegmentEmbedder: Sendable {
    func embed(_ features: DenseFeatures, masks: [RLE]) throws(PipelineError) -> [[Float]?]
}

/// The training-free USE embedding: each segment is the average of the patch features weighted
/// by how much of each patch the mask covers (`patchCoverage`), normalized; with a learned head,
/// the head maps the average into the text space first.
public struct MaskPooledEmbedder: SegmentEmbedder {
    public let head: SegmentHead?

    public init(head: SegmentHead? = nil) {
        self.head = head
    }

    public func embed(_ features: DenseFeatures, masks: [RLE]) throws(PipelineError) -> [[Float]?] {
        let patches = features.grid.h * features.grid.w, dimension = features.dimension
        if let head, head.inputDimension != dimension {
            throw .mismatch("the segment head takes \(head.inputDimension) values per patch; the CLIP features have \(dimension)")
        }
        guard !masks.isEmpty else { return [] }
        var weights = [Float](), totals = [Float]()
        weights.reserveCapacity(masks.count * patches)
        for (n, mask) in masks.enumerated() {
            guard mask.height == features.frame.height, mask.width == features.frame.width else {
                throw .mismatch("mask \(n) is \(mask.width)x\(mask.height); the frame is \(features.frame.width)x\(features.frame.height)")
            }
            let coverage = patchCoverage(mask, grid: features.grid)
            weights += coverage
            totals.append(coverage.reduce(0, +))
        }
        // [N, P] x [P, D]: every segment's weighted sum in one product; the head, if any, on all
        // the averages at once.
        var pooled = matmul(Tensor(shape: [masks.count, patches], values: weights), features.values)
        for n in 0..<masks.count where totals[n] > 0 {
            let row = pooled.pointer + n * dimension
            for d in 0..<dimension { row[d] /= totals[n] }
        }
        if let head { pooled = head(pooled) }
        let width = pooled.shape[1], values = pooled.toArray()
        return totals.enumerated().map { n, total in
            total > 0 ? normalized(values[(n * width)..<((n + 1) * width)]) : nil
        }
    }
}
