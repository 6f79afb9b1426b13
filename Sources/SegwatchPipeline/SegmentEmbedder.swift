// Segment embeddings in CLIP's joint space: the USE embedding of each mask of a frame.
import SegwatchCLIP
import SegwatchSAM
import SegwatchTensor

/// One frame's CLIP patch features in the joint space (`clearclip_last_block`), and the size of
/// the frame they describe: over the whole frame, or over a window of it.
public struct DenseFeatures: Sendable {
    /// `[grid.h * grid.w, dimension]`, row-major.
    public let values: Tensor
    public let grid: (h: Int, w: Int)
    public let frame: (height: Int, width: Int)
    /// Where `grid` lies in the grid laid over the whole frame (all of it, unless the features
    /// were computed on a window).
    public let window: PatchWindow

    /// What a USE head reads beyond the dense features, from the same passes; nil without one.
    public var head: HeadFrameFeatures?

    public var dimension: Int { values.shape[1] }

    /// `dense`: the vision tower's `[1, grid.h, grid.w, D]` output, on `window` of the frame's grid
    /// when given.
    public init(dense: Tensor, frame: (height: Int, width: Int), window: PatchWindow? = nil, head: HeadFrameFeatures? = nil) {
        self.head = head
        precondition(dense.rank == 4 && dense.shape[0] == 1, "dense features \(dense.shape); expected [1, h, w, D]")
        grid = (dense.shape[1], dense.shape[2])
        values = dense.contiguous().reshaped([grid.h * grid.w, dense.shape[3]])
        self.frame = frame
        self.window = window ?? PatchWindow(grid: grid, rows: 0..<grid.h, columns: 0..<grid.w)
        precondition(self.window.rows.count == grid.h && self.window.columns.count == grid.w, "features of \(grid) for a window of \(self.window)")
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
        let dimension = features.dimension
        if let head, head.inputDimension != dimension {
            throw .mismatch("the segment head takes \(head.inputDimension) values per patch; the CLIP features have \(dimension)")
        }
        guard !masks.isEmpty else { return [] }
        let coverage = try CoverageWeights(masks, frame: features.frame, window: features.window)
        // Every segment's average in one product; the head, if any, on all of them at once.
        var pooled = coverage.average(features.values)
        if let head { pooled = head(pooled) }
        let totals = coverage.totals
        let width = pooled.shape[1], values = pooled.toArray()
        return totals.enumerated().map { n, total in
            total > 0 ? normalized(values[(n * width)..<((n + 1) * width)]) : nil
        }
    }
}

/// Each mask's coverage of each patch of a grid (`patchCoverage`), as the rows of one matrix:
/// the weights of every average over the patches.
struct CoverageWeights {
    /// `[N, P]`.
    let weights: Tensor
    /// Each row's sum: the patch area a mask covers (0: it covers none, and has no average).
    let totals: [Float]

    /// Coverage on the frame's grid; on a window, of its patches only (a window is cut around
    /// the masks embedded on it).
    init(_ masks: [RLE], frame: (height: Int, width: Int), window: PatchWindow) throws(PipelineError) {
        let patches = window.rows.count * window.columns.count
        var weights = [Float](), totals = [Float]()
        weights.reserveCapacity(masks.count * patches)
        for (n, mask) in masks.enumerated() {
            guard mask.height == frame.height, mask.width == frame.width else {
                throw .mismatch("mask \(n) is \(mask.width)x\(mask.height); the frame is \(frame.width)x\(frame.height)")
            }
            let coverage = patchCoverage(mask, grid: window.grid)
            guard !window.isWhole else {
                weights += coverage
                totals.append(coverage.reduce(0, +))
                continue
            }
            var total: Float = 0
            for row in window.rows {
                let line = coverage[(row * window.grid.w + window.columns.lowerBound)..<(row * window.grid.w + window.columns.upperBound)]
                weights += line
                total += line.reduce(0, +)
            }
            totals.append(total)
        }
        self.weights = Tensor(shape: [masks.count, patches], values: weights)
        self.totals = totals
    }

    /// `[N, P] x [P, D]` divided by each row's total: each mask's average of `values`' rows
    /// (zeros for a mask that covers nothing).
    func average(_ values: Tensor) -> Tensor {
        let pooled = matmul(weights, values), dimension = values.shape[1]
        for n in totals.indices where totals[n] > 0 {
            let row = pooled.pointer + n * dimension
            for d in 0..<dimension { row[d] /= totals[n] }
        }
        return pooled
    }
}
