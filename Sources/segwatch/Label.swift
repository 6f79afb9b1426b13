import ArgumentParser
import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchMedia
import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor

/// `segwatch label`: every segment of one picture, with what it is.
struct Label: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment one picture with SAM's automatic mask generator and label every segment with CLIP.",
        discussion: """
            Each segment's embedding is the average of CLIP's dense patch features (ClearCLIP, \
            in the joint space) weighted by how much of each patch the mask covers, normalized \
            (the training-free USE embedding); with --head, a learned head maps it into the text \
            space first. It is compared with every label of the vocabulary (cosine similarity, \
            softmax at CLIP's logit scale). A segment whose best probability is below \
            --min-score, or best cosine below --min-cosine, is unknown.

            The dense features are computed on the picture resized whole so that its short side \
            is --clip-size and its long side the nearest multiple of the patch size.

            The label map gives each pixel the label whose probability summed over the segments \
            covering it is highest; pixels no labeled segment covers are unknown: 255 in an \
            8-bit map, 65535 in a 16-bit one (vocabularies of more than 255 labels).

            --out-json FILE writes the segments (COCO RLE, bbox [x, y, w, h], area, label, \
            score, cosine, top labels), the legend, the settings and the models' XXH64 digests. \
            Without output flags, a table of the segments is printed.
            """)

    @Argument(help: "A picture (anything FFmpeg decodes), or a video with --frame.")
    var image: String

    @Option(help: "SAM checkpoint: sam_vit_b/l/h .pth, or MobileSAM's mobile_sam.pt.")
    var sam: String

    @Option(help: "CLIP model folder (transformers or open_clip layout).")
    var clip: String

    @OptionGroup(title: "Vocabulary") var vocabulary: VocabularyOptions

    @Option(help: "Frame of a video to label, counting from 0.")
    var frame = 0

    @Option(help: "Short side, in pixels, of the picture CLIP's dense features are computed on.")
    var clipSize = 448

    @Option(help: "A learned segment head (.safetensors: proj.weight [D, D], optional proj.bias, norm.weight, norm.bias).")
    var head: String?

    @Option(help: "Labels listed per segment.")
    var topK = 5

    @Option(help: "A segment whose best probability is below this is unknown.")
    var minScore: Float = 0

    @Option(help: "A segment whose best cosine similarity is below this is unknown.")
    var minCosine: Float = -1

    @Option(name: .customLong("stuff"), help: "A label that is background (sky, road): reported, marked as stuff. Repeatable.")
    var stuff: [String] = []

    @OptionGroup(title: "Automatic mask generator")
    var generator: GeneratorOptions

    @Option(help: "Write the segments and labels as JSON.")
    var outJson: String?

    @Option(help: "Write the label map as PNG (8-bit indices, 16-bit over 255 labels).")
    var outMap: String?

    @Option(help: "Threads for inference.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard !vocabulary.isEmpty else { throw ValidationError("give --label (repeatable) or --vocab FILE") }
        guard frame >= 0 else { throw ValidationError("--frame must be 0 or more, not \(frame)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
        guard (16...4096).contains(clipSize) else { throw ValidationError("--clip-size must be in 16...4096, not \(clipSize)") }
        guard topK > 0 else { throw ValidationError("--top-k must be positive, not \(topK)") }
        if let outJson, !outJson.hasSuffix(".json") { throw ValidationError("--out-json must end in .json, not '\(outJson)'") }
        if let outMap, !outMap.hasSuffix(".png") { throw ValidationError("--out-map must end in .png, not '\(outMap)'") }
        try generator.options.validate()
    }

    func run() throws {
        try runReporting {
            // Everything a user can get wrong is checked before minutes of inference.
            let words = try vocabulary.resolve()
            let tokenizer = try CLIPTokenizer.forModel(directory: clip)
            try VocabularyEncoder<CPUBackend>.check(words.vocabulary.labels, templates: words.templates, tokenizer: tokenizer,
                                                    context: try CLIPConfig.load(directory: clip).contextLength)
            let names = words.vocabulary.labels.map(\.name)
            // 255 and 65535: the largest index of the map's 8 or 16 bits.
            let unknownIndex = names.count <= 255 ? 255 : 65535
            if let unknown = stuff.first(where: { !names.contains($0) }) {
                throw ValidationError("--stuff '\(unknown)' is not a label of the vocabulary")
            }
            let segmentHead = try head.map { try SegmentHead(contentsOf: $0) }
            let picture = try loadRGBImage(image, frame: frame)
            let backend = CPUBackend(threads: threads)

            let progress = Progress.onTerminal()
            let samModel = try Sam(contentsOf: sam, backend: backend)
            let masks = try SamAutomaticMaskGenerator(predictor: SamPredictor(model: samModel), options: generator.options)
                .generate(picture) { done, total in progress.bar("segmenting", done: done, total: total, unit: "batches") }
            progress.clear()

            let model = try CLIP.load(directory: clip, backend: backend)
            let grid = denseGrid(height: picture.height, width: picture.width, patch: model.config.patchSize)
            let pixels = clipPixels(rgb: picture.pixels, height: picture.height, width: picture.width,
                                    size: (grid.h * model.config.patchSize, grid.w * model.config.patchSize),
                                    mean: model.config.imageMean, std: model.config.imageStd)
            let (_, dense) = model.vision(backend.upload(pixels), dense: true)
            let features = DenseFeatures(dense: backend.download(dense!), frame: (picture.height, picture.width))
            let (labels, _) = try vocabulary.embeddings(words, clip: clip, backend: backend, model: model, tokenizer: tokenizer)

            let embeddings = try MaskPooledEmbedder(head: segmentHead).embed(features, masks: masks.map(\.rle))
            var options = ClassifierOptions()
            options.topK = topK
            options.minimumProbability = minScore
            options.minimumCosine = minCosine
            let classifier = SegmentClassifier(labels: labels, logitScale: model.logitScale, options: options)
            let present = embeddings.indices.filter { embeddings[$0] != nil }
            var results = [Classification?](repeating: nil, count: masks.count)
            for (index, result) in zip(present, try classifier.classify(present.map { embeddings[$0]! })) { results[index] = result }
            let map = try semanticMap(masks: masks.map(\.rle), probabilities: results.map { $0?.label == nil ? nil : $0!.probabilities },
                                      labels: names.count, height: picture.height, width: picture.width)

            if let outMap {
                let indices = map.map { $0 < 0 ? unknownIndex : Int($0) }
                try writePNG(names.count <= 255 ? .gray8(indices.map { UInt8($0) }) : .gray16(indices.map { UInt16($0) }),
                             width: picture.width, height: picture.height, to: outMap)
            }
            let segments = masks.indices.map { i in
                SegmentRecord(mask: masks[i], result: results[i], names: names, stuff: Set(stuff))
            }
            if let outJson {
                let settings = LabelSettings(clip_grid: [grid.h, grid.w], clip_size: clipSize, top_k: topK, min_score: minScore,
                                             min_cosine: minCosine, templates: words.templates.templates,
                                             points_per_side: generator.pointsPerSide, head: head)
                let memo = vocabulary.cacheStore()?.digestMemo
                let digests = ModelDigests(sam: hexDigest(try fileDigest(sam, memo: memo)),
                                           clip: hexDigest(try CLIPFolder.digest(directory: clip, memo: memo)),
                                           head: try head.map { hexDigest(try fileDigest($0)) })
                try writeJSON(LabelRecord(image: image, frame: frame, width: picture.width, height: picture.height, legend: names,
                                          unknown_index: unknownIndex, stuff: stuff, settings: settings,
                                          models: digests, segments: segments), to: outJson)
            }
            if outJson == nil && outMap == nil {
                print("segment      area  bbox [x, y, w, h]       label                 score  cosine")
                for (i, s) in segments.enumerated() {
                    print(String(format: "%7d  %8d  %-22@  %-20@  %5.3f  %6.3f", i, s.area, "\(s.bbox)" as NSString,
                                 s.label as NSString, s.score ?? .nan, s.cosine ?? .nan))
                }
            }
        }
    }

    /// The dense grid for a picture: `clipSize` on the short side, the long side the nearest
    /// multiple of the patch (at least one patch), both in patches.
    func denseGrid(height: Int, width: Int, patch: Int) -> (h: Int, w: Int) {
        let short = max(1, Int((Double(clipSize) / Double(patch)).rounded()))
        let long = { (side: Int, other: Int) in max(1, Int((Double(side) / Double(other) * Double(short)).rounded())) }
        return height <= width ? (short, long(width, height)) : (long(height, width), short)
    }
}

private struct ModelDigests: Encodable {
    var sam: String
    var clip: String
    var head: String?
}

private struct LabelSettings: Encodable {
    var clip_grid: [Int]
    var clip_size: Int
    var top_k: Int
    var min_score: Float
    var min_cosine: Float
    var templates: [String]
    var points_per_side: Int
    var head: String?
}

private struct LabelRecord: Encodable {
    var image: String
    var frame: Int
    var width: Int
    var height: Int
    var legend: [String]
    var unknown_index: Int
    var stuff: [String]
    var settings: LabelSettings
    var models: ModelDigests
    var segments: [SegmentRecord]
}

/// One labeled segment in `label`'s JSON. `label` is "unknown" below the thresholds; a segment
/// without an embedding (its mask covers nothing) has no score.
private struct SegmentRecord: Encodable {
    var segmentation: CocoRLE
    var bbox: [Int]
    var area: Int
    var predicted_iou: Double
    var stability_score: Double
    var label: String
    var score: Float?
    var cosine: Float?
    var labels: [[LabelScoreValue]]
    var stuff: Bool

    init(mask: GeneratedMask, result: Classification?, names: [String], stuff: Set<String>) {
        segmentation = CocoRLE(mask.rle)
        bbox = boxXYXYToXYWH(mask.box)
        area = mask.area
        predicted_iou = Double(mask.predictedIou)
        stability_score = Double(mask.stabilityScore)
        label = result?.label.map { names[$0] } ?? "unknown"
        score = result?.score
        cosine = result?.cosine
        labels = result?.top.map { [.name(names[$0.label]), .probability($0.probability)] } ?? []
        self.stuff = stuff.contains(label)
    }
}

/// `["car", 0.82]`: a name and a probability in one JSON array, as the event format has them.
private enum LabelScoreValue: Encodable {
    case name(String)
    case probability(Float)

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .name(name): try container.encode(name)
        case let .probability(value): try container.encode((Double(value) * 10000).rounded() / 10000)
        }
    }
}
