// One picture in, labeled segments and a label map out: SAM's automatic mask generator, the USE
// segment embedding on CLIP's dense features, the classifier and the semantic map, in the order
// the USE paper runs them. `segwatch label`, `eval` and `bench label` share it.
import Dispatch
import SegwatchCLIP
import SegwatchDINOv2
import SegwatchNN
import SegwatchSAM
import SegwatchTensor

public struct LabelerOptions: Sendable {
    /// Short side, in pixels, of the picture the dense features are computed on.
    public var clipSize = 448
    /// Short side, in pixels, of the picture DINOv2 sees (with a USE head).
    public var dinoSize = 448
    public var generator = MaskGeneratorOptions()
    public var classifier = ClassifierOptions()
    /// Weight of the masked-crop embedding (`CropEmbedder`) in the segment embedding:
    /// `normalize((1 - w) use + w crop)`. 0 skips the crops.
    public var cropWeight: Float = 0

    public init() {}
}

/// Where one picture's time went, in milliseconds.
public struct LabelTimings: Sendable, Equatable {
    public var amg = 0.0
    /// The CLIP image tower with its ClearCLIP dense features, resize included.
    public var clipDense = 0.0
    /// DINOv2 on the whole picture, resize included (with a USE head).
    public var dino = 0.0
    /// USE pooling (and the head) for every segment, plus the crops when blended.
    public var embed = 0.0
    public var classify = 0.0
    public var map = 0.0

    public var total: Double { amg + clipDense + dino + embed + classify + map }

    public init() {}
}

/// What `ImageLabeler` finds in one picture.
public struct LabeledPicture: Sendable {
    public var masks: [GeneratedMask]
    /// Per mask; nil for a mask that covers no patch area (it has no embedding).
    public var results: [Classification?]
    /// Each mask's unit embedding in the text space (nil: its mask covers nothing).
    public var embeddings: [[Float]?]
    /// Row-major label indices, -1 where no labeled segment votes.
    public var map: [Int32]
    /// The dense grid the features were computed on, in patches.
    public var grid: (h: Int, w: Int)
    public var timings: LabelTimings
}

public struct ImageLabeler<B: Backend>: Sendable {
    public let sam: Sam<B>
    public let clip: CLIP<B>
    public let backend: B
    public let classifier: SegmentClassifier
    public let embedder: any SegmentEmbedder
    public let head: LearnedHead<B>?
    public let options: LabelerOptions

    /// - Parameter background: the embedded `BackgroundPrompts` of the labels, for "none of these".
    public init(sam: Sam<B>, clip: CLIP<B>, backend: B, labels: LabelEmbeddings, background: LabelEmbeddings? = nil,
                head: LearnedHead<B>? = nil, options: LabelerOptions = LabelerOptions()) throws(PipelineError) {
        guard (0...1).contains(options.cropWeight) else { throw .mismatch("the crop weight must be in [0, 1], not \(options.cropWeight)") }
        var output = clip.config.embedDim
        if case let .linear(linear) = head { output = linear.outputDimension }
        guard labels.dimension == output else {
            throw .mismatch("the labels have \(labels.dimension) values; the segment embeddings have \(output)")
        }
        if options.cropWeight > 0, output != clip.config.embedDim {
            throw .mismatch("a crop embedding has \(clip.config.embedDim) values; the head gives \(output)")
        }
        self.sam = sam
        self.clip = clip
        self.backend = backend
        if let background, background.dimension != labels.dimension {
            throw .mismatch("the background prompts have \(background.dimension) values; the labels have \(labels.dimension)")
        }
        classifier = SegmentClassifier(labels: labels, background: background, logitScale: clip.logitScale, options: options.classifier)
        switch head {
        case let .use(use, _): embedder = UseHeadEmbedder(head: use)
        case let .linear(linear): embedder = MaskPooledEmbedder(head: linear)
        case nil: embedder = MaskPooledEmbedder()
        }
        self.head = head
        self.options = options
    }

    /// The dense grid for a picture: `clipSize` on the short side, the long side the nearest
    /// multiple of the patch (at least one patch), both in patches.
    ///
    /// The grid holds at most four times the patches of a square one (`clipSize` on each side):
    /// pictures up to 4:1 keep `clipSize` on the short side; a longer one is scaled down whole,
    /// keeping its aspect, until it fits. Without the cap a 200x2 video asked for a 28x2800 grid:
    /// 78,400 tokens, two minutes and 1.2 GB for one frame (attention grows with their square).
    public func denseGrid(height: Int, width: Int) -> (h: Int, w: Int) {
        denseGridFor(height: height, width: width, patch: clip.config.patchSize, clipSize: options.clipSize)
    }


    /// CLIP's dense features of the whole picture resized to `denseGrid`, or of the patches of
    /// `window` in it: the same pixels and positions, the attention within the window (ClearCLIP
    /// on a crop at the same scale).
    public func denseFeatures(_ picture: RGBImage, window: PatchWindow? = nil) -> DenseFeatures {
        backend.runOnHost { denseFeaturesOnHost(picture, window: window) }
    }

    private func denseFeaturesOnHost(_ picture: RGBImage, window: PatchWindow?) -> DenseFeatures {
        let grid = denseGrid(height: picture.height, width: picture.width), patch = clip.config.patchSize
        var pixels = modelPixels(rgb: picture.pixels, height: picture.height, width: picture.width,
                                size: (grid.h * patch, grid.w * patch), mean: clip.config.imageMean, std: clip.config.imageStd)
        let window = window.flatMap { $0.isWhole ? nil : $0 }
        if let window {
            precondition(window.grid == grid, "a window of \(window.grid) patches on a picture of \(grid)")
            pixels = pixels.sliced(2, window.rows.lowerBound * patch..<window.rows.upperBound * patch)
                .sliced(3, window.columns.lowerBound * patch..<window.columns.upperBound * patch).contiguous()
        }
        guard case let .use(use, dino) = head else {
            let (_, dense) = clip.vision(backend.upload(pixels), dense: true, window: window)
            return DenseFeatures(dense: backend.download(dense!), frame: (picture.height, picture.width), window: window)
        }
        // The USE head: CLIP's levels and pooled embedding from the same pass, DINOv2 on the
        // whole picture at its own grid.
        let clipPass = clip.vision.features(backend.upload(pixels), dense: true, window: window, levels: Set(use.clipLevels))
        let dense = backend.download(clipPass.dense!)
        let patches = dense.shape[1] * dense.shape[2]
        let clipLevels = use.clipLevels.map { backend.download(clipPass.hidden[$0]!).selected(0, 0).sliced(0, 1..<(1 + patches)).contiguous() }
        let start = DispatchTime.now()
        let dinoGrid = denseGridFor(height: picture.height, width: picture.width, patch: dino.config.patchSize, clipSize: options.dinoSize)
        let dinoPixels = modelPixels(rgb: picture.pixels, height: picture.height, width: picture.width,
                                     size: (dinoGrid.h * dino.config.patchSize, dinoGrid.w * dino.config.patchSize),
                                     mean: dino.config.imageMean, std: dino.config.imageStd)
        // The pixels are a multiple of the patch and the levels were checked with the head: the
        // pass cannot refuse them.
        let dinoPass = try! dino(backend.upload(dinoPixels), levels: Set(use.dinoLevels))
        let first = 1 + dino.config.registers, tokens = first + dinoGrid.h * dinoGrid.w
        let frame = HeadFrameFeatures(
            clipLevels: clipLevels, clipImage: backend.download(clipPass.pooled).reshaped([clip.config.embedDim]),
            dinoLevels: use.dinoLevels.map { backend.download(dinoPass.hidden[$0]!).selected(0, 0).sliced(0, first..<tokens).contiguous() },
            dinoGrid: dinoGrid, dinoCLS: backend.download(dinoPass.pooled).reshaped([dino.config.hiddenSize]),
            dinoMilliseconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
        return DenseFeatures(dense: dense, frame: (picture.height, picture.width), window: window, head: frame)
    }

    /// Dense features may be computed on a window of the frame: not with a USE head, whose
    /// image tokens are the whole frame's.
    public var computesWindows: Bool {
        if case .use = head { return false }
        return true
    }

    /// Segments, embeds, classifies and maps one picture. `progress(done, total)` follows the
    /// mask generator's batches, the longest part.
    public func label(_ picture: RGBImage, progress: ((Int, Int) -> Void)? = nil) throws -> LabeledPicture {
        try backend.runOnHost { () throws -> LabeledPicture in try labelOnHost(picture, progress: progress) }
    }

    private func labelOnHost(_ picture: RGBImage, progress: ((Int, Int) -> Void)?) throws -> LabeledPicture {
        var timings = LabelTimings()
        let masks = try timed(&timings, \.amg) {
            try SamAutomaticMaskGenerator(predictor: SamPredictor(model: sam), options: options.generator).generate(picture, progress: progress)
        }
        let features = timed(&timings, \.clipDense) { denseFeatures(picture) }
        timings.dino = features.head?.dinoMilliseconds ?? 0
        timings.clipDense -= timings.dino
        let rles = masks.map(\.rle)
        let embeddings = try timed(&timings, \.embed) { () throws -> [[Float]?] in
            let pooled = try embedder.embed(features, masks: rles)
            guard options.cropWeight > 0 else { return pooled }
            let crops = try CropEmbedder(clip: clip, backend: backend).embed(picture, masks: rles)
            let w = options.cropWeight
            return zip(pooled, crops).map { use, crop in
                guard let use, let crop else { return nil }
                return normalized(zip(use, crop).map { (1 - w) * $0 + w * $1 }[...])
            }
        }
        let results = try timed(&timings, \.classify) { () throws -> [Classification?] in
            let present = embeddings.indices.filter { embeddings[$0] != nil }
            var results = [Classification?](repeating: nil, count: masks.count)
            for (index, result) in zip(present, try classifier.classify(present.map { embeddings[$0]! })) { results[index] = result }
            return results
        }
        let map = try timed(&timings, \.map) {
            try semanticMap(masks: rles, probabilities: results.map { $0?.label == nil ? nil : $0!.probabilities },
                            labels: classifier.labels.labels.count, height: picture.height, width: picture.width)
        }
        return LabeledPicture(masks: masks, results: results, embeddings: embeddings, map: map, grid: features.grid, timings: timings)
    }
}

/// `ImageLabeler.denseGrid` for a model's patch size and a short side of `clipSize` pixels.
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
