import SegwatchBackends
import ArgumentParser
import Dispatch
import Foundation
import SegwatchService
import SegwatchCLIP
import SegwatchMedia
import SegwatchPipeline
import SegwatchTensor

/// `segwatch eval`: semantic segmentation scores of label maps against ground truth.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score label maps against ground truth: mean IoU, per-class IoU, pixel accuracy, frequency-weighted IoU.",
        discussion: """
            Ground truth: a folder of label-map PNGs (8- or 16-bit gray, or palette pictures \
            whose palette indices are the classes), one per image, named as the image (x.jpg -> \
            x.png). --classes lists the classes in index order, one per line (synonyms after |, \
            # comments): the same file is the vocabulary when segwatch labels the images.

            Predictions come from --pred (label maps named as the ground truth, as `segwatch \
            label --map-out` writes them; 255, or 65535 in 16-bit maps, is unknown), or are made \
            on the fly: --images DIR with --sam and --clip labels each image as `segwatch label` \
            does, with a progress bar.

            One confusion matrix is summed over all images, ground-truth pixels at \
            --ignore-index left out (mmsegmentation's IoUMetric, detectron2's SemSegEvaluator). \
            An unknown prediction counts as a miss. A class absent from both the ground truth \
            and the predictions has no IoU and is left out of the means. --reduce-zero-label \
            maps ground truth 0 to the ignore index and every other value v to v - 1, as \
            mmsegmentation does for ADE20K (150 classes, 0 = other). --per-image F.csv writes \
            each image's pixel accuracy and IoU as it is scored.
            """)

    @Option(help: "Folder of ground-truth label maps (.png).")
    var gt: String

    @Option(help: "Class names, one per line in index order (synonyms after |, # comments).")
    var classes: String

    @Option(help: "Folder of predicted label maps (.png), named as the ground truth.")
    var pred: String?

    @Option(help: "Folder of images to label and score (instead of --pred); needs --sam and --clip.")
    var images: String?

    @Option(help: "Ground-truth value left out of the scores.")
    var ignoreIndex = 255

    @Flag(help: "Ground truth 0 becomes the ignore index and v becomes v - 1 (ADE20K's 150 classes).")
    var reduceZeroLabel = false

    @Option(help: "Write one CSV row per image (pixel accuracy, mean IoU, segments, seconds).")
    var perImage: String?

    @Flag(help: "Print the scores as JSON.")
    var json = false

    @OptionGroup(title: "Labeling (with --images)") var models: LabelerArguments

    @OptionGroup(title: "Vocabulary (with --images; the labels are --classes)") var vocabulary: VocabularyOptions

    func validate() throws {
        guard (pred == nil) != (images == nil) else { throw ValidationError("give --pred DIR or --images DIR (one of them)") }
        guard vocabulary.isEmpty else { throw ValidationError("--label and --vocab do not apply: the labels are the --classes file") }
        if images != nil { try models.requireModels() }
        guard (0...65535).contains(ignoreIndex) else { throw ValidationError("--ignore-index must be in 0...65535, not \(ignoreIndex)") }
        if let perImage, !perImage.hasSuffix(".csv") { throw ValidationError("--per-image must end in .csv, not '\(perImage)'") }
    }

    func run() throws {
        try runReporting {
            let pairs = try imagePairs()
            let names: [String]
            var labeler: ImageLabeler<ComputeBackend>?
            if images != nil {
                var options = vocabulary
                options.vocab = classes
                let words = try models.words(options)
                names = words.names
                labeler = try models.labeler(words, vocabulary: options)
            } else {
                names = try Vocabulary(file: classes).labels.map(\.name)
            }
            let csv = try perImage.map { try CSVWriter(path: $0, header: ["image", "width", "height", "scored_pixels", "pixel_accuracy",
                                                                        "mean_iou", "segments", "seconds"]) }
            var total = ConfusionMatrix(classes: names.count, ignoreIndex: ignoreIndex)
            let progress = Progress.onTerminal()
            for (n, pair) in pairs.enumerated() {
                progress.bar("scoring", done: n, total: pairs.count, unit: "images")
                let start = DispatchTime.now()
                let truth = try groundTruth(pair.truth)
                let (prediction, segments) = try predict(pair.input, labeler: labeler)
                guard (prediction.width, prediction.height) == (truth.width, truth.height) else {
                    throw CommandError("\(pair.input) is \(prediction.width)x\(prediction.height); its ground truth \(pair.truth) is \(truth.width)x\(truth.height)")
                }
                var matrix = ConfusionMatrix(classes: names.count, ignoreIndex: ignoreIndex)
                do {
                    try matrix.add(truth: truth.values, prediction: prediction.values, unknown: prediction.unknownIndex)
                } catch {
                    throw CommandError("\(pair.input) against \(pair.truth): \(error)")
                }
                total.add(matrix)
                let scores = matrix.scores
                try csv?.append([pair.input, "\(truth.width)", "\(truth.height)", "\(scores.truthArea.reduce(0, +))",
                                 format(scores.pixelAccuracy), format(scores.meanIoU), segments.map(String.init) ?? "",
                                 String(format: "%.3f", milliseconds(since: start) / 1000)])
            }
            progress.clear()
            let report = EvalReport(names: names, scores: total.scores, images: pairs.count)
            print(json ? try jsonString(report) : report.table())
        }
    }

    /// Each scored input (a prediction or an image) with its ground truth, all found before any
    /// work: a missing file is reported at once, not after an hour of labeling.
    func imagePairs() throws -> [(input: String, truth: String)] {
        let truths = try files(in: gt, what: "--gt").filter { $0.hasSuffix(".png") }
        guard !truths.isEmpty else { throw CommandError("--gt \(gt) holds no .png label maps") }
        let stem = { (name: String) in (name as NSString).deletingPathExtension }
        let truthByStem = Dictionary(truths.map { (stem($0), $0) }, uniquingKeysWith: { a, _ in a })
        if let pred {
            let predictions = Set(try files(in: pred, what: "--pred"))
            let missing = truths.filter { !predictions.contains($0) }
            guard missing.isEmpty else {
                throw CommandError("--pred \(pred) lacks \(missing.count) of the \(truths.count) label maps, e.g. \(missing.prefix(3).joined(separator: ", "))")
            }
            return truths.map { (path(pred, $0), path(gt, $0)) }
        }
        let inputs = try files(in: images!, what: "--images")
        guard !inputs.isEmpty else { throw CommandError("--images \(images!) holds no files") }
        let missing = inputs.filter { truthByStem[stem($0)] == nil }
        guard missing.isEmpty else {
            throw CommandError("--gt \(gt) has no label map for \(missing.count) of the \(inputs.count) images, e.g. \(missing.prefix(3).map { stem($0) + ".png" }.joined(separator: ", "))")
        }
        return inputs.map { (path(images!, $0), path(gt, truthByStem[stem($0)]!)) }
    }

    private func files(in folder: String, what: String) throws -> [String] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw CommandError("\(what) \(folder) is not a folder")
        }
        return try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") }.sorted()
    }

    private func path(_ folder: String, _ name: String) -> String { (folder as NSString).appendingPathComponent(name) }

    /// The ground truth with --reduce-zero-label applied.
    private func groundTruth(_ file: String) throws -> LabelMap {
        let map = try readLabelMap(file)
        guard reduceZeroLabel else { return map }
        let ignore = UInt16(ignoreIndex)
        return LabelMap(width: map.width, height: map.height,
                        values: map.values.map { $0 == 0 || $0 == ignore ? ignore : $0 - 1 }, bitDepth: map.bitDepth)
    }

    /// The predicted map, and how many segments made it (labeled on the fly).
    private func predict(_ input: String, labeler: ImageLabeler<ComputeBackend>?) throws -> (LabelMap, Int?) {
        guard let labeler else { return (try readLabelMap(input), nil) }
        let picture = try loadRGBImage(input, frame: 0)
        let labeled = try labeler.label(picture)
        let values = labeled.map.map { $0 < 0 ? UInt16.max : UInt16($0) }
        return (LabelMap(width: picture.width, height: picture.height, values: values, bitDepth: 16), labeled.masks.count)
    }
}

private func format(_ value: Double?) -> String { value.map { String(format: "%.6f", $0) } ?? "" }

/// The scores as printed: a per-class table and the summary, or JSON.
private struct EvalReport: Encodable {
    struct ClassScore: Encodable {
        var name: String
        var iou: Double?
        var accuracy: Double?
        var truth_pixels: Int
        var predicted_pixels: Int
    }

    var images: Int
    var mean_iou: Double?
    var mean_accuracy: Double?
    var pixel_accuracy: Double?
    var frequency_weighted_iou: Double?
    var classes: [ClassScore]

    init(names: [String], scores: SegmentationScores, images: Int) {
        self.images = images
        mean_iou = scores.meanIoU
        mean_accuracy = scores.meanAccuracy
        pixel_accuracy = scores.pixelAccuracy
        frequency_weighted_iou = scores.frequencyWeightedIoU
        classes = names.indices.map {
            ClassScore(name: names[$0], iou: scores.iou[$0], accuracy: scores.accuracy[$0],
                       truth_pixels: scores.truthArea[$0], predicted_pixels: scores.predictedArea[$0])
        }
    }

    func table() -> String {
        let percent = { (value: Double?) in value.map { String(format: "%6.2f", $0 * 100) } ?? "     -" }
        let width = max(5, classes.map(\.name.count).max() ?? 0)
        var lines = ["class".padding(toLength: width, withPad: " ", startingAt: 0) + "     IoU     Acc     gt pixels"]
        for c in classes {
            lines.append(c.name.padding(toLength: width, withPad: " ", startingAt: 0)
                + "  \(percent(c.iou))  \(percent(c.accuracy))  " + String(format: "%12d", c.truth_pixels))
        }
        lines.append("")
        lines.append("images \(images)   mIoU \(percent(mean_iou))   mAcc \(percent(mean_accuracy))   aAcc \(percent(pixel_accuracy))   fwIoU \(percent(frequency_weighted_iou))")
        return lines.joined(separator: "\n")
    }
}

/// A CSV file written row by row and flushed, so what was scored survives an interruption.
final class CSVWriter {
    private let handle: FileHandle
    let path: String

    init(path: String, header: [String]) throws {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CommandError("cannot write \(path)")
        }
        self.handle = handle
        try append(header)
    }

    deinit { try? handle.close() }

    func append(_ fields: [String]) throws {
        let line = fields.map { field in
            field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
        }.joined(separator: ",") + "\n"
        try handle.write(contentsOf: Data(line.utf8))
    }
}
