import SegwatchBackends
import ArgumentParser
import CMalloc
import Dispatch
import Foundation
import SegwatchService
import SegwatchCLIP
import SegwatchDINOv2
import SegwatchMedia
import SegwatchPipeline
import SegwatchSAM
import SegwatchSynthetic
import SegwatchTensor
import SegwatchUSE

/// `segwatch bench pipeline`: `segwatch run`'s per-frame work on consecutive frames of a video,
/// keyframes and tracked frames, against ../shared/bench/peers.py `pipeline`.
struct BenchPipeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Time segwatch run's work per analyzed frame: keyframes, tracked frames, and each stage.",
        discussion: """
            The first --max-frames frames of --video are analyzed one after another as `segwatch run \
            --fps 0` does (decode, SAM encoder, CLIP dense features, the mask decoder, embedding, \
            classification against --labels labels, tracking, and the JSON lines, written to \
            nowhere), with a keyframe every --keyframe-every frames.

            The weights are random (MobileSAM's mobile_sam.pt of the fixtures, and a synthetic \
            ViT-B/16 unless --clip), which keep no mask at the usual thresholds. So, like \
            the reference benchmark, the generator runs at thresholds 0 with an NMS that suppresses \
            nothing, and a keyframe keeps the --segments masks of best predicted IoU; re-prompted \
            tracks are all kept (random masks overlap so much that they would merge).

            frame_ms is the mean over all frames, max_frame_ms the longest (what --keyframe-slices \
            shortens); keyframe_ms and tracked_frame_ms the means over each kind (with slices, a \
            keyframe is the frame of its first slice); the stage keys are means over all frames \
            (decoder_ms the mask decoder's arithmetic, masks_ms the masks made of its logits). peak_rss_mb is the process's \
            peak; rss_mb_first and rss_mb_last the resident size after the first and the last \
            tracked frame (samples.rss_mb: after each); pool_cached_mb what the tensor buffer cache \
            holds at the end (samples.pool_cached_mb: after each tracked frame; samples.heap_mb: \
            malloc's heaps, in use or not). prompts_per_frame and keyframe_prompts count the mask \
            decoder's prompts; tracked_clip_share is the share of tracked frames that computed \
            CLIP's dense features (some segment new, moved, unsettled or due), \
            carried_per_tracked_frame the segments a tracked frame reported with an earlier \
            embedding; with --keyframe-track-prompts, keyframe_recovered is the share of \
            the whole generator's masks (its --segments best) that a keyframe after the first \
            finds again at IoU >= 0.9.
            """)

    @OptionGroup var options: BenchOptions
    @OptionGroup var tensor: TensorBenchOptions
    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var keyframes: KeyframeOptions

    @Option(help: "The video.")
    var video: String

    @Option(help: "Frames to analyze, from the first.")
    var maxFrames = 20

    @Option(help: "Analyze every Nth frame of the video (1: every frame). A live source is analyzed at the engine's rate: 25 replays a 25 fps camera analyzed once a second, with its motion between analyzed frames, the same frames every run.")
    var every = 1

    @Option(help: "SAM checkpoint or model name (e.g. MobileSAM's mobile_sam.pt).", transform: ModelArgument.sam)
    var sam: String

    @Option(help: "A CLIP model (folder, OpenAI .pt or model name) to time instead of the synthetic ViT-B/16.", transform: ModelArgument.clip)
    var clip: String?

    @Option(help: "Labels in the vocabulary.")
    var labels = 20

    @Option(help: "Segments a keyframe keeps.")
    var segments = 50

    @Option(help: "Short side, in pixels, of the picture CLIP's dense features are computed on.")
    var clipSize = 448

    @Option(help: "Points per side of the keyframes' generator grid.")
    var pointsPerSide = 32

    @Flag(help: "Label through a USE head that reads DINOv2 (the synthetic ViT-B/14 of 'bench dino', or --dino): CLIP levels 6 and 12, DINOv2 levels 6 and 12, a random residual.")
    var useHead = false

    @Option(help: "The DINOv2 model (folder or model name) the USE head reads instead of the synthetic ViT-B/14 (with --use-head).", transform: ModelArgument.dino)
    var dino: String?

    @Option(help: "Short side, in pixels, of the picture DINOv2 sees (with --use-head).")
    var dinoSize = 448

    func validate() throws {
        guard maxFrames > 0, labels > 0, segments > 0 else { throw ValidationError("--max-frames, --labels and --segments must be positive") }
        guard (1...100_000).contains(every) else { throw ValidationError("--every must be in 1...100000, not \(every)") }
        guard (1...100_000).contains(keyframes.keyframeEvery) else { throw ValidationError("--keyframe-every must be in 1...100000") }
        guard (1...1024).contains(keyframes.keyframeSlices) else { throw ValidationError("--keyframe-slices must be in 1...1024") }
    }

    mutating func run() throws {
        let engine = CPUEngine(threads: tensor.threads)
        let backend = try backendOptions.open(threads: tensor.threads)
        // Host-side work (pooling, classification, mask post-processing) on the same threads.
        try engine.run {
            let modelFolder = try runReporting { try BenchCLIPFiles(clip, name: "pipeline") }
            defer { modelFolder.remove() }
            let folder = modelFolder.path
            let (samModel, model) = try runReporting { (try Sam(contentsOf: sam, backend: backend), try CLIP.load(folder, backend: backend)) }
            let vocabulary = try runReporting { try BenchClip.peerVocabulary(labels, model: model, folder: folder) }
            let names = vocabulary.labels.map(\.name)
            let dinoScratch = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-bench-pipeline-dino-\(getpid())")
            defer { try? FileManager.default.removeItem(at: dinoScratch) }
            let head = try runReporting { try useHead ? benchUseHead(clip: model, dino: dino, scratch: dinoScratch, backend: backend) : nil }
            var settings = LabelerOptions()
            settings.clipSize = clipSize
            settings.dinoSize = dinoSize
            settings.generator.pointsPerSide = pointsPerSide
            settings.generator.predIouThresh = 0
            settings.generator.stabilityScoreThresh = 0
            settings.generator.boxNmsThresh = 1
            var analyzerOptions = AnalyzerOptions()
            keyframes.apply(to: &analyzerOptions)
            analyzerOptions.maximumSegments = segments
            analyzerOptions.trackedMinimumIoU = 0
            analyzerOptions.keyframeBelowIoU = 0
            analyzerOptions.keyframeBelowCoverage = 0
            analyzerOptions.duplicateIoU = 1
            let exact = try SamAutomaticMaskGenerator(predictor: SamPredictor(model: samModel), options: settings.generator)
            var analyzer = try runReporting {
                try VideoAnalyzer(labeler: try ImageLabeler(sam: samModel, clip: model, backend: backend, labels: vocabulary, head: head,
                                                            options: settings),
                                  options: analyzerOptions)
            }
            let decoder = try runReporting { try VideoDecoder(InputSpec(video), options: DecodeOptions(layout: .rgb24)) }
            let source = URL(fileURLWithPath: video).lastPathComponent

            var frameMs: [Double] = [], keyframeMs: [Double] = [], trackedMs: [Double] = []
            var stages: [String: [Double]] = [:]
            var rss: [Double] = [], pooled: [Double] = [], heap: [Double] = []
            var segmentCounts: [Double] = [], prompts: [Double] = [], keyframePrompts: [Double] = []
            var recovered = 0, exactMasks = 0
            // Tracked frames that computed CLIP's dense features, and segments that carried an
            // earlier embedding over.
            var clipFrames = 0, carried: [Double] = []
            let progress = Progress.onTerminal()
            for n in 0..<maxFrames {
                // The frames a live source would have dropped meanwhile: decoded, not timed.
                if n > 0 {
                    for _ in 1..<every { guard try runReporting({ try decoder.next() }) != nil else { break } }
                }
                var start = DispatchTime.now()
                guard let frame = try runReporting({ try decoder.next() }) else { break }
                let picture = RGBImage(frame)
                let decodeMs = milliseconds(since: start)
                let pts = frame.pts ?? Double(frame.index) / (decoder.stream.fps ?? 25)
                let analysis = try runReporting { try analyzer.analyze(picture, pts: pts) }
                start = DispatchTime.now()
                var bytes = try jsonString(FrameRecord(source: source, frame: frame.index, pts: pts, width: frame.width, height: frame.height,
                                                       analysis: analysis, names: names)).utf8.count
                for event in analysis.events { bytes += try jsonString(TrackRecord(event, source: source, names: names)).utf8.count }
                let sinkMs = milliseconds(since: start)
                let t = analysis.timings
                let total = decodeMs + t.total + sinkMs
                frameMs.append(total)
                if analysis.keyframe != nil {
                    keyframeMs.append(total)
                } else {
                    trackedMs.append(total)
                    if t.clipDense > 0 { clipFrames += 1 }
                    carried.append(Double(analysis.segments.count { $0.scoredPts != pts }))
                    rss.append(residentMegabytes())
                    pooled.append(poolMegabytes(backend.engine))
                    heap.append(heapMegabytes())
                }
                segmentCounts.append(Double(analysis.segments.count))
                prompts.append(Double(analysis.prompts))
                if analysis.keyframe != nil {
                    keyframePrompts.append(Double(analysis.prompts))
                    if keyframes.keyframeTrackPrompts, n > 0 {
                        // The whole generator on the same frame (untimed): which of its masks came back.
                        var whole = try exact.generate(picture)
                        whole = Array(whole.sorted { $0.predictedIou > $1.predictedIou }.prefix(segments))
                        let found = analysis.segments.map { rleToMask($0.mask.rle) }.compactMap { mask in MaskBox(mask).map { (mask, $0) } }
                        for mask in whole.map({ rleToMask($0.rle) }) {
                            guard let box = MaskBox(mask) else { continue }
                            exactMasks += 1
                            if found.contains(where: { maskIoU($0.0, $0.1, shiftedBy: (0, 0), mask, box) >= 0.9 }) { recovered += 1 }
                        }
                    }
                }
                for (key, value) in [("decode_ms", decodeMs), ("sam_encoder_ms", t.samEncoder), ("clip_dense_ms", t.clipDense), ("dino_ms", t.dino),
                                     ("decoder_ms", t.decoder), ("masks_ms", t.masks),
                                     ("classify_ms", t.embed + t.classify), ("track_ms", t.track), ("sink_ms", sinkMs)] {
                    stages[key, default: []].append(value)
                }
                progress.update(String(format: "frame %d/%d: %.0f ms (%@), %d segments, %d bytes of events", n + 1, maxFrames, total,
                                       analysis.keyframe?.rawValue ?? "tracked", analysis.segments.count, bytes))
            }
            progress.clear()
            func mean(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }
            var result = BenchResult()
            result["frame_ms"] = .number(mean(frameMs))
            result["max_frame_ms"] = .number(frameMs.max() ?? .nan)
            result["keyframe_ms"] = .number(mean(keyframeMs))
            result["tracked_frame_ms"] = .number(mean(trackedMs))
            result.samples["frame_ms"] = frameMs
            for (key, values) in stages {
                result[key] = .number(mean(values))
                result.samples[key] = values
            }
            result["encoders_ms"] = .number(mean(stages["sam_encoder_ms"] ?? []) + mean(stages["clip_dense_ms"] ?? []))
            result["peak_rss_mb"] = .number(peakResidentMegabytes())
            result["rss_mb_first"] = .number(rss.first ?? .nan)
            result["rss_mb_last"] = .number(rss.last ?? .nan)
            result.samples["rss_mb"] = rss
            result["pool_cached_mb"] = .number(poolMegabytes(backend.engine))
            result.samples["pool_cached_mb"] = pooled
            result.samples["heap_mb"] = heap
            result["frames"] = .number(Double(frameMs.count))
            result["keyframes"] = .number(Double(keyframeMs.count))
            result["segments_per_frame"] = .number(mean(segmentCounts))
            result["prompts_per_frame"] = .number(mean(prompts))
            result["tracked_clip_share"] = .number(trackedMs.isEmpty ? .nan : Double(clipFrames) / Double(trackedMs.count))
            result["carried_per_tracked_frame"] = .number(mean(carried))
            result["every"] = .number(Double(every))
            result["keyframe_prompts"] = .number(mean(keyframePrompts))
            if keyframes.keyframeTrackPrompts { result["keyframe_recovered"] = .number(exactMasks > 0 ? Double(recovered) / Double(exactMasks) : .nan) }
            result["labels"] = .number(Double(labels))
            result["keyframe_every"] = .number(Double(keyframes.keyframeEvery))
            result["discovery_grid"] = .number(Double(keyframes.discoveryGrid))
            result["keyframe_slices"] = .number(Double(keyframes.keyframeSlices))
            result["sam"] = .string(samModel.imageEncoder.summary)
            result["clip"] = .string(model.config.summary)
            result.describeMachine()
            result["threads"] = .number(Double(tensor.threads))
            print(options.json ? try result.json() : result.text())
        }
    }
}

/// The process's resident set now, from /proc/self/statm.
func residentMegabytes() -> Double {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
          let pages = statm.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return .nan }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

/// What the tensor buffer cache holds now.
private func poolMegabytes(_ engine: CPUEngine) -> Double { Double(engine.storage.statistics.cachedBytes) / 1_048_576 }

/// The bytes malloc's arenas hold from the system (not its mappings), in use or free.
private func heapMegabytes() -> Double { Double(mallinfo2().arena) / 1_048_576 }

/// The process's peak resident set (`ru_maxrss`, kilobytes on Linux).
func peakResidentMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// A USE head for `bench pipeline --use-head`: DINOv2 from `dino` or a synthetic ViT-B/14
/// written to `scratch`, CLIP levels 6 and 12 (or the tower's last two halves), DINOv2's 6 and
/// 12 (likewise), a small random residual.
private func benchUseHead(clip: CLIP<ComputeBackend>, dino: String?, scratch: URL, backend: ComputeBackend) throws -> LearnedHead<ComputeBackend> {
    if dino == nil { try writeSyntheticDINOv2(to: scratch, width: 768, layers: 12, heads: 12) }
    let model = try Dinov2Model.load(dino ?? scratch.path, backend: backend)
    let clipLevels = [clip.vision.depth / 2, clip.vision.depth], dinoLevels = [model.config.layers / 2, model.config.layers]
    let shape = UseHeadShape(embed: clip.config.embedDim, clipWidth: clip.config.vision.width, dinoWidth: model.config.hiddenSize,
                             clipLevels: 2, dinoLevels: 2)
    var parameters = try UseHead.trainingFree(shape, clipLevels: clipLevels, dinoLevels: dinoLevels, logitScale: clip.logitScale).parameters
    let weight = benchTensor([shape.embed, shape.features], seed: 21)
    parameters["proj.weight"] = Tensor(shape: weight.shape, values: weight.toArray().map { $0 * 0.01 })
    return .use(try UseHead(shape: shape, parameters: parameters, clipLevels: clipLevels, dinoLevels: dinoLevels), dino: model)
}
