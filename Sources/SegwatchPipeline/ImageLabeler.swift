// One picture in, labeled segments and a label map out: SAM's automatic mask generator, the USE
// segment embedding on CLIP's dense features, the classifier and the semantic map, in the order
// the USE paper runs them. `segwatch label`, `eval` and `bench label` share it.
import SegwatchCLIP
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
    let featurizer: FrameFeaturizer<B>

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
        let encoding = SegmentEncoding(clip: clip, backend: backend, head: head, clipSize: options.clipSize, dinoSize: options.dinoSize)
        (embedder, featurizer) = (encoding.embedder, encoding.featurizer)
        try featurizer.checkSizes()
        self.head = head
        self.options = options
    }

    /// The dense grid for a picture (`FrameFeaturizer.denseGrid`).
    public func denseGrid(height: Int, width: Int) -> (h: Int, w: Int) { featurizer.denseGrid(height: height, width: width) }

    /// The features a picture's segments are embedded on (`FrameFeaturizer`): CLIP's dense
    /// features of the whole picture or of `window`, and what a USE head reads besides.
    public func denseFeatures(_ picture: RGBImage, window: PatchWindow? = nil) -> DenseFeatures {
        backend.runOnHost { featurizer(picture, window: window) }
    }

    /// Dense features may be computed on a window of the frame: not with a USE head, whose
    /// image tokens are the whole frame's.
    public var computesWindows: Bool { featurizer.dino == nil }

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
