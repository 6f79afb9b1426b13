import SegwatchBackends
import ArgumentParser
import Dispatch
import Foundation
import SegwatchService
import SegwatchCLIP
import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor

/// `segwatch bench label`: one picture labeled end to end, timed by stage, against
/// ../shared/bench/peers.py `amg` + `clip-image` (the PyTorch peers of the same work).
struct BenchLabel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "label",
        abstract: "Time labeling one picture: the automatic mask generator, CLIP's dense features, segment embedding, classification.",
        discussion: """
            amg_ms: SamAutomaticMaskGenerator on the picture with the generator flags (default \
            32x32 points, as the reference benchmark does). clip_dense_ms: the picture resized to --clip-size on \
            its short side and through the CLIP image tower with ClearCLIP dense features. With \
            random weights the generator keeps few masks, so the segment stages run on \
            --segments synthetic masks (rectangles of many sizes, overlapping): \
            embed_ms_per_segment is USE pooling per segment; classify_ms is every segment against \
            the --labels vocabulary (the reference benchmark's names, one template, encoded once, not \
            timed) plus the semantic map. total_ms = amg_ms + clip_dense_ms + segments x \
            embed_ms_per_segment + classify_ms. The mask decoder alone, per prompt, is bench sam's.

            Without --clip the model is OpenAI's ViT-B/16 layout with random weights (as bench clip).
            """)

    @OptionGroup var options: BenchOptions
    @OptionGroup var tensor: TensorBenchOptions
    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "SAM checkpoint or model name (e.g. MobileSAM's mobile_sam.pt).", transform: ModelArgument.sam)
    var sam: String

    @Option(help: "A CLIP model (folder, OpenAI .pt or model name) to time instead of the synthetic ViT-B/16.", transform: ModelArgument.clip)
    var clip: String?

    @Option(help: "The picture to label.")
    var image: String

    @Option(help: "Labels in the vocabulary.")
    var labels = 1000

    @Option(help: "Synthetic segments the embedding and classification stages run on.")
    var segments = 50

    @Option(help: "Short side, in pixels, of the picture CLIP's dense features are computed on.")
    var clipSize = 448

    @OptionGroup(title: "Automatic mask generator")
    var generator: GeneratorOptions

    func validate() throws {
        guard labels > 0, segments > 0 else { throw ValidationError("--labels and --segments must be positive") }
        guard (16...4096).contains(clipSize) else { throw ValidationError("--clip-size must be in 16...4096, not \(clipSize)") }
        try generator.options.validate()
    }

    mutating func run() throws {
        let engine = CPUEngine(threads: tensor.threads)
        let backend = try backendOptions.open(threads: tensor.threads)
        // Host-side work (pooling, classification, mask post-processing) on the same threads.
        try engine.run {
            let modelFolder = try runReporting { try BenchCLIPFiles(clip, name: "label") }
            defer { modelFolder.remove() }
            let folder = modelFolder.path
            let picture = try runReporting { try loadRGBImage(image, frame: 0) }
            let (samModel, model) = try runReporting { (try Sam(contentsOf: sam, backend: backend), try CLIP.load(folder, backend: backend)) }
            let vocabulary = try runReporting { try BenchClip.peerVocabulary(labels, model: model, folder: folder) }
            var settings = LabelerOptions()
            settings.clipSize = clipSize
            settings.generator = generator.options
            let labeler = try runReporting { try ImageLabeler(sam: samModel, clip: model, backend: backend, labels: vocabulary, options: settings) }

            var result = BenchResult()
            var amg: [Double] = [], dense: [Double] = [], masks = 0
            let progress = Progress.onTerminal()
            for run in 0..<(options.warmup + options.runs) {
                let labeled = try runReporting {
                    try labeler.label(picture) { done, total in progress.bar("run \(run + 1)", done: done, total: total, unit: "batches") }
                }
                progress.clear()
                guard run >= options.warmup else { continue }
                amg.append(labeled.timings.amg)
                dense.append(labeled.timings.clipDense)
                masks = labeled.masks.count
            }

            let rles = syntheticMasks(count: segments, height: picture.height, width: picture.width)
            let features = labeler.denseFeatures(picture)
            var embed: [Double] = [], classify: [Double] = []
            for run in 0..<(options.warmup + options.runs) {
                var start = DispatchTime.now()
                let embeddings = try runReporting { try labeler.embedder.embed(features, masks: rles) }
                let embedded = milliseconds(since: start) / Double(segments)
                start = DispatchTime.now()
                let results = try runReporting { try labeler.classifier.classify(embeddings.map { $0! }) }
                _ = try runReporting {
                    try semanticMap(masks: rles, probabilities: results.map(\.probabilities), labels: labels,
                                    height: picture.height, width: picture.width)
                }
                if run >= options.warmup {
                    embed.append(embedded)
                    classify.append(milliseconds(since: start))
                }
            }
            for (key, samples) in [("amg_ms", amg), ("clip_dense_ms", dense), ("embed_ms_per_segment", embed),
                                   ("classify_ms", classify)] {
                result.samples[key] = samples
                result[key] = .number(median(samples))
            }
            result["total_ms"] = .number(median(amg) + median(dense) + Double(segments) * median(embed) + median(classify))
            result["amg_masks"] = .number(Double(masks))
            result["segments"] = .number(Double(segments))
            result["labels"] = .number(Double(labels))
            result["clip_grid"] = .string("\(features.grid.h)x\(features.grid.w)")
            result["points_per_side"] = .number(Double(generator.pointsPerSide))
            result["sam"] = .string(samModel.imageEncoder.summary)
            result["clip"] = .string(model.config.summary)
            result["threads"] = .number(Double(tensor.threads))
            result["runs"] = .number(Double(options.runs))
            print(options.json ? try result.json() : result.text())
        }
    }
}

/// `count` rectangles from a fixed sequence: sizes from a few pixels to most of the picture,
/// overlapping, none empty.
func syntheticMasks(count: Int, height: Int, width: Int) -> [RLE] {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next(_ bound: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(max(1, bound)))
    }
    return (0..<count).map { n in
        let scale = Double(n % 10 + 1) / 10
        let (h, w) = (max(1, Int(Double(height) * scale * 0.8)), max(1, Int(Double(width) * scale * 0.8)))
        let (y0, x0) = (next(height - h + 1), next(width - w + 1))
        var mask = BinaryMask(height: height, width: width)
        for y in y0..<(y0 + h) { for x in x0..<(x0 + w) { mask.pixels[y * width + x] = 1 } }
        return maskToRLE(mask)
    }
}
