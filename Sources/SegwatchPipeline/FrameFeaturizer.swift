// What a picture's segments are embedded on: CLIP's dense features (ClearCLIP) at `clipSize`
// on the short side, and, for the USE head, CLIP's hidden states at chosen blocks and its
// pooled embedding from the same pass, and DINOv2's hidden states at chosen layers and its
// class token at `dinoSize`. The labeling and `segwatch features` share it.
import Dispatch
import SegwatchCLIP
import SegwatchDINOv2
import SegwatchNN
import SegwatchSAM
import SegwatchTensor

public struct FrameFeaturizer<B: Backend>: Sendable {
    public let clip: CLIP<B>
    public let backend: B
    /// Short side, in pixels, of the picture CLIP's dense features are computed on.
    public let clipSize: Int
    /// CLIP's blocks whose hidden states are kept (1-based; empty without a USE head).
    public let clipLevels: [Int]
    /// DINOv2 with its size and layers, for a USE head.
    public let dino: Dinov2Model<B>?
    public let dinoSize: Int
    public let dinoLevels: [Int]

    public init(clip: CLIP<B>, backend: B, clipSize: Int, clipLevels: [Int] = [], dino: Dinov2Model<B>? = nil, dinoSize: Int = 448,
                dinoLevels: [Int] = []) {
        (self.clip, self.backend, self.clipSize, self.clipLevels) = (clip, backend, clipSize, clipLevels)
        (self.dino, self.dinoSize, self.dinoLevels) = (dino, dinoSize, dinoLevels)
    }

    /// Throws when the largest grid a picture may get (`denseGrid`'s cap) would not fit the
    /// backend at `clipSize` (CLIP) or `dinoSize` (DINOv2), naming the size to lower: an error
    /// at start instead of a failure on the first frame.
    public func checkSizes() throws(PipelineError) {
        /// `fits` of the largest picture at `size`: four times a square grid's patches, as one
        /// row of four squares.
        func check(_ key: String, _ size: Int, patch: Int, _ fits: (_ height: Int, _ width: Int) throws -> Void) throws(PipelineError) {
            let side = max(1, Int((Double(size) / Double(patch)).rounded())) * patch
            do { try fits(side, 4 * side) } catch { throw .mismatch("\(key) \(size): \(error): lower \(key)") }
        }
        try check("clip_size", clipSize, patch: clip.config.patchSize, clip.checkFits)
        if let dino { try check("dino_size", dinoSize, patch: dino.config.patchSize, dino.checkFits) }
    }

    /// The dense grid for a picture: `clipSize` on the short side, the long side the nearest
    /// multiple of the patch (at least one patch), both in patches.
    ///
    /// The grid holds at most four times the patches of a square one (`clipSize` on each side):
    /// pictures up to 4:1 keep `clipSize` on the short side; a longer one is scaled down whole,
    /// keeping its aspect, until it fits. Without the cap a 200x2 video asked for a 28x2800 grid:
    /// 78,400 tokens, two minutes and 1.2 GB for one frame (attention grows with their square).
    public func denseGrid(height: Int, width: Int) -> (h: Int, w: Int) {
        denseGridFor(height: height, width: width, patch: clip.config.patchSize, clipSize: clipSize)
    }

    /// The features of the whole picture resized to `denseGrid`, or of the patches of `window`
    /// in it (the same pixels and positions, the attention within the window: ClearCLIP on a
    /// crop at the same scale). Runs on the calling thread's engine.
    public func callAsFunction(_ picture: RGBImage, window: PatchWindow? = nil) -> DenseFeatures {
        let grid = denseGrid(height: picture.height, width: picture.width), patch = clip.config.patchSize
        var pixels = modelPixels(rgb: picture.pixels, height: picture.height, width: picture.width,
                                 size: (grid.h * patch, grid.w * patch), mean: clip.config.imageMean, std: clip.config.imageStd)
        let window = window.flatMap { $0.isWhole ? nil : $0 }
        if let window {
            precondition(window.grid == grid, "a window of \(window.grid) patches on a picture of \(grid)")
            pixels = pixels.sliced(2, window.rows.lowerBound * patch..<window.rows.upperBound * patch)
                .sliced(3, window.columns.lowerBound * patch..<window.columns.upperBound * patch).contiguous()
        }
        let frame = (picture.height, picture.width)
        let clipPass = clip.vision.features(backend.upload(pixels), dense: true, window: window, levels: Set(clipLevels))
        let dense = backend.download(clipPass.dense!)
        guard let dino else { return DenseFeatures(dense: dense, frame: frame, window: window) }
        // The USE head's: CLIP's levels (patch rows) and pooled embedding from that pass,
        // DINOv2 on the whole picture at its own grid.
        let patches = dense.shape[1] * dense.shape[2]
        let clipHidden = clipLevels.map { backend.download(clipPass.hidden[$0]!).selected(0, 0).sliced(0, 1..<(1 + patches)).contiguous() }
        let start = DispatchTime.now()
        let dinoGrid = denseGridFor(height: picture.height, width: picture.width, patch: dino.config.patchSize, clipSize: dinoSize)
        let dinoPixels = modelPixels(rgb: picture.pixels, height: picture.height, width: picture.width,
                                     size: (dinoGrid.h * dino.config.patchSize, dinoGrid.w * dino.config.patchSize),
                                     mean: dino.config.imageMean, std: dino.config.imageStd)
        // The sides are multiples of the patch and the levels were checked against the model:
        // the pass cannot refuse them.
        let dinoPass = try! dino(backend.upload(dinoPixels), levels: Set(dinoLevels))
        let first = 1 + dino.config.registers, tokens = first + dinoGrid.h * dinoGrid.w
        let head = HeadFrameFeatures(
            clipLevels: clipHidden, clipImage: backend.download(clipPass.pooled).reshaped([clip.config.embedDim]),
            dinoLevels: dinoLevels.map { backend.download(dinoPass.hidden[$0]!).selected(0, 0).sliced(0, first..<tokens).contiguous() },
            dinoGrid: dinoGrid, dinoCLS: backend.download(dinoPass.pooled).reshaped([dino.config.hiddenSize]),
            dinoMilliseconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
        return DenseFeatures(dense: dense, frame: frame, window: window, head: head)
    }
}

/// `FrameFeaturizer.denseGrid` for a model's patch size and a short side of `clipSize` pixels.
func denseGridFor(height: Int, width: Int, patch: Int, clipSize: Int) -> (h: Int, w: Int) {
    let short = max(1, Int((Double(clipSize) / Double(patch)).rounded()))
    let long = { (side: Int, other: Int) in max(1, Int((Double(side) / Double(max(other, 1)) * Double(short)).rounded())) }
    var grid = height <= width ? (h: short, w: long(width, height)) : (h: long(height, width), w: short)
    let limit = 4 * short * short
    if grid.h * grid.w > limit {
        let scale = (Double(limit) / Double(grid.h * grid.w)).squareRoot()
        grid = (max(1, Int(Double(grid.h) * scale)), max(1, Int(Double(grid.w) * scale)))
        // A side that cannot shrink below one patch leaves the other to take the cap alone.
        if grid.h >= grid.w { grid.h = min(grid.h, limit / grid.w) } else { grid.w = min(grid.w, limit / grid.h) }
    }
    return grid
}
