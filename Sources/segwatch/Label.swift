import ArgumentParser
import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchMedia
import SegwatchPipeline
import SegwatchSAM
import SegwatchService
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

            --json-out FILE writes the segments (COCO RLE, bbox [x, y, w, h], area, label, \
            score, cosine, top labels), the legend, the settings and the models' XXH64 digests. \
            --overlay-out FILE.png draws the picture with each segment's mask in its label's color \
            (gray: unknown), its outline, and its label and score in a box at its center, \
            larger segments first so smaller ones stay on top. The font is a real one, through \
            FreeType: --font, else $SEGWATCH_FONT, else DejaVu Sans Bold (fonts-dejavu-core). \
            Without output flags, a table of the segments is printed.
            """)

    @Argument(help: "A picture (anything FFmpeg decodes), or a video with --frame.")
    var image: String

    @OptionGroup var models: LabelerArguments

    @OptionGroup(title: "Vocabulary") var vocabulary: VocabularyOptions

    @Option(help: "Frame of a video to label, counting from 0.")
    var frame = 0

    @Option(name: .customLong("stuff"), help: "A label that is background (sky, road): reported, marked as stuff. Repeatable.")
    var stuff: [String] = []

    @Option(help: "Write the segments and labels as JSON.")
    var jsonOut: String?

    @Option(help: "Write the label map as PNG (8-bit indices, 16-bit over 255 labels).")
    var mapOut: String?

    @Option(help: "Write the picture with translucent colored masks, outlines and labels as PNG.")
    var overlayOut: String?

    @Option(help: "Font of the overlay's labels (TrueType/OpenType; default: $SEGWATCH_FONT, else DejaVu Sans Bold).")
    var font: String?

    @Option(help: "Label text height in pixels (default: the picture's short side / 30, at least 12).")
    var fontSize: Int?

    func validate() throws {
        try models.requireModels()
        guard !vocabulary.isEmpty else { throw ValidationError("give --label (repeatable) or --vocab FILE") }
        guard frame >= 0 else { throw ValidationError("--frame must be 0 or more, not \(frame)") }
        if let jsonOut, !jsonOut.hasSuffix(".json") { throw ValidationError("--json-out must end in .json, not '\(jsonOut)'") }
        if let mapOut, !mapOut.hasSuffix(".png") { throw ValidationError("--map-out must end in .png, not '\(mapOut)'") }
        if let overlayOut, !overlayOut.hasSuffix(".png") { throw ValidationError("--overlay-out must end in .png, not '\(overlayOut)'") }
        if let fontSize, !(4...512).contains(fontSize) { throw ValidationError("--font-size must be in 4...512, not \(fontSize)") }
    }

    func run() throws {
        try runReporting {
            let words = try models.words(vocabulary)
            let names = words.names
            // 255 and 65535: the largest index of the map's 8 or 16 bits.
            let unknownIndex = names.count <= 255 ? 255 : 65535
            if let unknown = stuff.first(where: { !names.contains($0) }) {
                throw ValidationError("--stuff '\(unknown)' is not a label of the vocabulary")
            }
            let picture = try loadRGBImage(image, frame: frame)
            let face = try overlayOut.map { _ in
                try Font(path: try Font.locate(font), pixelSize: fontSize ?? max(12, min(picture.width, picture.height) / 30))
            }
            let labeler = try models.labeler(words, vocabulary: vocabulary)
            let progress = Progress.onTerminal()
            let labeled = try labeler.label(picture) { done, total in progress.bar("segmenting", done: done, total: total, unit: "batches") }
            progress.clear()
            let (masks, results, map, grid) = (labeled.masks, labeled.results, labeled.map, labeled.grid)

            if let mapOut {
                let indices = map.map { $0 < 0 ? unknownIndex : Int($0) }
                try writePNG(names.count <= 255 ? .gray8(indices.map { UInt8($0) }) : .gray16(indices.map { UInt16($0) }),
                             width: picture.width, height: picture.height, to: mapOut)
            }
            if let overlayOut, let face {
                let drawn = try drawOverlay(picture, segments: masks.indices.map { i in
                    OverlaySegment(mask: masks[i].rle, text: overlayText(results[i]?.label, results[i]?.score ?? 0, names), colorIndex: results[i]?.label)
                }, font: face)
                try writePNG(.rgb24(drawn.pixels), width: picture.width, height: picture.height, to: overlayOut)
            }
            let segments = masks.indices.map { i in
                SegmentRecord(mask: masks[i], result: results[i], names: names, stuff: Set(stuff))
            }
            if let jsonOut {
                let settings = LabelSettings(clip_grid: [grid.h, grid.w], clip_size: models.clipSize, top_k: models.topK,
                                             min_score: models.minScore, min_cosine: models.minCosine, crop_weight: models.cropWeight,
                                             templates: words.templates.templates, points_per_side: models.generator.pointsPerSide,
                                             head: models.head, dino: models.dino, dino_size: models.dino == nil ? nil : models.dinoSize)
                let digests = try models.digests(memo: vocabulary.cacheStore()?.digestMemo)
                try writeJSON(LabelRecord(image: image, frame: frame, width: picture.width, height: picture.height, legend: names,
                                          unknown_index: unknownIndex, stuff: stuff, settings: settings,
                                          models: digests, segments: segments), to: jsonOut)
            }
            if jsonOut == nil && mapOut == nil && overlayOut == nil {
                print("segment      area  bbox [x, y, w, h]       label                 score  cosine")
                for (i, s) in segments.enumerated() {
                    print(String(format: "%7d  %8d  %-22@  %-20@  %5.3f  %6.3f", i, s.area, "\(s.bbox)" as NSString,
                                 s.label as NSString, s.score ?? .nan, s.cosine ?? .nan))
                }
            }
        }
    }
}

private struct LabelSettings: Encodable {
    var clip_grid: [Int]
    var clip_size: Int
    var top_k: Int
    var min_score: Float
    var min_cosine: Float
    var crop_weight: Float
    var templates: [String]
    var points_per_side: Int
    var head: String?
    var dino: String?
    var dino_size: Int?
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
        label = labelName(result?.label, names)
        score = result?.score
        cosine = result?.cosine
        labels = result?.top.map { [.name(names[$0.label]), .probability($0.probability)] } ?? []
        self.stuff = stuff.contains(label)
    }
}

