import ArgumentParser
import Dispatch
import Foundation
import SegwatchCLIP
import SegwatchMedia
import SegwatchPipeline
import SegwatchTensor
import SegwatchSAM

/// `segwatch run`: a video's analyzed frames segmented, labeled and tracked, as JSON lines.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment, label and track the objects of a video, as JSON lines.",
        discussion: """
            From a file, the frames analyzed are the first at or after each 1/fps step of video \
            (--fps 0: every frame), none lost. From a live source (rtsp://, a camera), the newest \
            frame is analyzed whenever the engine is free, at most --fps a second; the frames \
            dropped meanwhile are counted, and each change of the connection is a `source` event \
            (it reconnects with backoff).

            Keyframes (the first, then every --keyframe-every analyzed frames, sooner at a scene \
            cut or when the tracks' predicted IoU or coverage drops) are segmented by SAM's \
            automatic mask generator. Between them each track is segmented again by prompting \
            SAM with its moved box, a point on it and its previous mask, and a sparse grid \
            (--discovery-grid) looks for new objects where no track is. Every segment is labeled \
            as `segwatch label` does and matched to the tracks (optimal assignment on mask \
            overlap, against where each track's motion predicts it, and embedding similarity). \
            A track's label is a vote over its frames that changes only on clear evidence; a \
            track ends after --max-age analyzed frames unseen.

            Output, one JSON object per line (stdout, or --json-out FILE), each line written \
            whole: a `frame` event per analyzed frame (its segments with track id, label, \
            score, top labels, bbox [x, y, w, h], area, predicted_iou, stability and COCO RLE; \
            segments with a --stuff label are listed apart with their area, not tracked), \
            `track` events (`start`, `label` when it changes, `end` with its best score and \
            lifetime) and `source` events. The format is docs/events.schema.json. The same lines \
            go to --events-socket for `segwatch tail`; --video-out writes every frame annotated.

            SIGINT or SIGTERM finishes the frame in flight, ends the tracks, flushes the output, \
            finalizes the video, closes the socket and exits 0. A summary goes to stderr.
            """)

    @Argument(help: "A video file or any FFmpeg input.")
    var input: String

    @Option(help: "Settings from a profile file (profiles/*.toml: `key = value` lines, the keys being these options' long names); options given here win. Repeatable.")
    var profile: [String] = []

    @OptionGroup var models: LabelerArguments

    @OptionGroup(title: "Vocabulary") var vocabulary: VocabularyOptions

    @Option(help: "Analyzed frames per second of video; 0 analyzes every frame.")
    var fps = 1.0

    @Option(help: "Stop after this many analyzed frames.")
    var maxFrames: Int?

    @Option(help: "Analyzed frames a track may go unseen before it ends.")
    var maxAge = 30

    @Option(help: "A keyframe (the full automatic mask generator) every this many analyzed frames; between them the tracks are re-prompted.")
    var keyframeEvery = 10

    @Option(help: "Points per side of the sparse grid that looks for new objects between keyframes (0: none).")
    var discoveryGrid = 8

    @Option(help: "A re-prompted track's mask is kept when its predicted IoU is at least this.")
    var trackedMinIou = 0.5

    @Option(help: "A keyframe comes early when the re-prompted masks' mean predicted IoU falls below this.")
    var keyframeBelowIou = 0.7

    @Option(name: .customLong("stuff"), help: "A background label (sky, road): reported per frame with its area, not tracked. Repeatable.")
    var stuff: [String] = []

    @Option(help: "The `source` name in the events (default: the input's file name).")
    var sourceName: String?

    @Option(help: "Write the JSON lines to this file instead of stdout.")
    var jsonOut: String?

    @Option(help: "Write the annotated video here (.mp4, .mkv, .mov): every source frame, with the latest masks, labels, scores and track ids.")
    var videoOut: String?

    @Option(help: "Also publish the events on this Unix socket, for any number of readers (`segwatch tail`); a reader that falls behind is dropped.")
    var eventsSocket: String?

    @Option(help: "Font of the video's labels (TrueType/OpenType; default: $SEGWATCH_FONT, else DejaVu Sans Bold).")
    var font: String?

    func validate() throws {
        try models.requireModels()
        guard !vocabulary.isEmpty else { throw ValidationError("give --label (repeatable) or --vocab FILE") }
        guard fps >= 0, fps.isFinite, fps <= 1000 else { throw ValidationError("--fps must be in 0...1000, not \(fps)") }
        if let maxFrames, maxFrames < 1 { throw ValidationError("--max-frames must be positive, not \(maxFrames)") }
        do {
            try analyzerOptions(stuff: []).validate()
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func analyzerOptions(stuff: Set<Int>) -> AnalyzerOptions {
        var options = AnalyzerOptions()
        options.keyframeEvery = keyframeEvery
        options.discoveryGrid = discoveryGrid
        options.trackedMinimumIoU = trackedMinIou
        options.keyframeBelowIoU = keyframeBelowIou
        options.tracker.maxAge = maxAge
        options.stuff = stuff
        return options
    }

    func run() async throws {
        let shutdown = ShutdownSignal.shared
        shutdown.install()
        try await runReporting {
            let words = try models.words(vocabulary)
            let names = words.names
            if let unknown = stuff.first(where: { !names.contains($0) }) {
                throw ValidationError("--stuff '\(unknown)' is not a label of the vocabulary")
            }
            // Before the models load, so readers can attach before the first event.
            let socket = try eventsSocket.map { try EventSocket(path: $0) }
            defer { socket?.close() }
            let spec = InputSpec(input)
            // A file is opened before the models load, so a bad one is reported at once.
            let decoder = spec.isLive ? nil : try VideoDecoder(spec, options: DecodeOptions(layout: .rgb24))
            let labeler = try models.labeler(words, vocabulary: vocabulary)
            var analyzer = try VideoAnalyzer(labeler: labeler, options: analyzerOptions(stuff: Set(stuff.compactMap { names.firstIndex(of: $0) })))
            let output = try JSONLines(path: jsonOut, socket: socket)
            let video = try videoOut.map { VideoSink(path: $0, fps: decoder?.stream.fps ?? 25, font: try Font.locate(self.font), names: names) }
            let source = sourceName ?? (spec.isLive ? spec.redacted : URL(fileURLWithPath: input).lastPathComponent)
            var summary = RunSummary()
            let progress = Progress.onTerminal()
            let started = DispatchTime.now()
            var lastPts = 0.0
            var failure: Error?

            func emit(_ events: [TrackEvent]) throws {
                for event in events { try output.write(TrackRecord(event, source: source, names: names)) }
            }
            /// One decoded frame: analyzed when its encoders' output is given, then handed to the video stage.
            func handle(_ frame: VideoFrame, index: Int, pts: Double, encoded: VideoAnalyzer<CPUBackend>.EncodedFrame?) throws {
                summary.decoded += 1
                if let encoded {
                    lastPts = pts
                    let analysis = try analyzer.analyze(encoded, pts: pts)
                    summary.add(analysis)
                    let sinkStart = DispatchTime.now()
                    try output.write(FrameRecord(source: source, frame: index, pts: pts, width: frame.width, height: frame.height,
                                                 analysis: analysis, names: names))
                    try emit(analysis.events)
                    video?.show(analysis)
                    summary.sinkMs += milliseconds(since: sinkStart)
                }
                showProgress()
                video?.append(frame)
                if let error = video?.error { throw error }
            }
            // A file's frames are known from its header (or duration), so it gets a bar and an ETA.
            let totalFrames: Int? = decoder.flatMap { decoder in
                let stream = decoder.stream
                return stream.announcedFrames ?? stream.duration.flatMap { duration in stream.fps.map { Int(duration * $0) } }
            }
            func showProgress() {
                let elapsed = milliseconds(since: started) / 1000
                let rate = String(format: "%d analyzed (%.2f/s), %d tracks live", summary.analyzed,
                                  Double(summary.analyzed) / max(elapsed, 1e-9), analyzer.tracker.tracks.count)
                guard let totalFrames, totalFrames > 0 else { return progress.update("frame \(summary.decoded), " + rate) }
                progress.bar("", done: min(summary.decoded, totalFrames), total: totalFrames, unit: "frames", detail: rate)
            }
            func more() -> Bool { shutdown.caughtSignal == nil && maxFrames.map { summary.analyzed < $0 } ?? true }

            do {
                if let decoder {
                    // A file: exactly the frames the rate selects, none lost. Stages on threads of
                    // their own, joined by bounded channels: decoding runs a few frames ahead, and the
                    // schedule and the image encoders one analyzed frame ahead of the segmentation,
                    // labeling and tracking here (which depend on the previous frame's tracks).
                    let decoded = BoundedChannel<Result<VideoFrame, any Error>>(capacity: 4)
                    let reader = StageThread(name: "decode") { [decoder = UncheckedBox(decoder)] in
                        defer { decoded.close() }
                        do {
                            while let frame = try decoder.value.next() {
                                guard decoded.send(.success(frame)) else { return }
                            }
                        } catch {
                            decoded.send(.failure(error))
                        }
                    }
                    typealias Scheduled = (frame: VideoFrame, pts: Double, encoded: VideoAnalyzer<CPUBackend>.EncodedFrame?)
                    let scheduled = BoundedChannel<Result<Scheduled, any Error>>(capacity: 2)
                    let fallbackFps = decoder.stream.fps ?? 25
                    let encoder = StageThread(name: "encode") { [analyzer, fps, maxFrames] in
                        defer { scheduled.close() }
                        var schedule = FrameSchedule(fps: fps)
                        var selected = 0
                        while let item = decoded.receive() {
                            let result = Result { () throws -> Scheduled in
                                let frame = try item.get()
                                let pts = frame.pts ?? Double(frame.index) / fallbackFps
                                guard schedule.selects(pts: pts), maxFrames.map({ selected < $0 }) ?? true else { return (frame, pts, nil) }
                                selected += 1
                                return (frame, pts, try analyzer.encode(RGBImage(frame)))
                            }
                            guard scheduled.send(result), case .success = result else { break }
                        }
                        decoded.cancel()
                    }
                    defer {
                        scheduled.cancel()
                        decoded.cancel()
                        encoder.wait()
                        reader.wait()
                    }
                    while more(), let item = scheduled.receive() {
                        let next: Scheduled
                        do { next = try item.get() } catch {
                            failure = error  // a damaged input: what came before it is kept
                            break
                        }
                        try handle(next.frame, index: next.frame.index, pts: next.pts, encoded: next.encoded)
                    }
                } else {
                    // A live source: its reader keeps only the newest frame, so each analysis
                    // takes the newest one when the engine is free (at most --fps a second of
                    // wall time); what the reader dropped meanwhile is counted. Its timestamps
                    // start again at each reconnection, so frames are numbered and timed from
                    // the start of the run instead.
                    let live = LiveSource(spec, options: DecodeOptions(layout: .rgb24), bufferSize: 1)
                    shutdown.onSignal { live.stop() }
                    let states = Task {
                        for await state in live.states { try? output.write(SourceRecord(state, source: source)) }
                    }
                    var next = 0.0
                    for await frame in live.frames {
                        guard more() else {
                            live.stop()
                            break
                        }
                        let now = milliseconds(since: started) / 1000
                        let analyze = now >= next
                        if analyze, fps > 0 { next = now + 1 / fps }
                        let encoded = analyze ? try analyzer.encode(RGBImage(frame)) : nil
                        try handle(frame, index: summary.decoded, pts: fourDecimals(now), encoded: encoded)
                    }
                    live.stop()
                    await states.value
                    summary.dropped = live.dropped
                }
            } catch {
                failure = error
            }
            // Whatever stopped the run, what was produced is finished: tracks ended, video playable.
            try emit(analyzer.finish(pts: lastPts))
            do { try video?.finish() } catch { failure = failure ?? error }
            progress.clear()
            summary.seconds = milliseconds(since: started) / 1000
            summary.videoMs = video?.busyMilliseconds ?? 0
            summary.droppedReaders = socket?.droppedReaders ?? 0
            printError(summary.description)
            if let failure { throw failure }
        }
    }
}

/// A `source` event: a live source's change of connection state.
struct SourceRecord: Encodable {
    var type = "source"
    var source: String
    var state: String
    var error: String?
    var attempt: Int?
    var delay: Double?

    init(_ state: SourceState, source: String) {
        self.source = source
        switch state {
        case .connecting(let attempt):
            self.state = "connecting"
            self.attempt = attempt > 0 ? attempt : nil
        case .connected:
            self.state = "connected"
        case .disconnected(let error):
            self.state = "disconnected"
            self.error = error
        case .reconnecting(let attempt, let delay, let error):
            (self.state, self.attempt, self.delay, self.error) = ("reconnecting", attempt, fourDecimals(delay), error)
        case .stopped(let error):
            (self.state, self.error) = ("ended", error)
        }
    }
}

/// Writes JSON lines to stdout or a file, each line in one write so a reader never sees half,
/// and publishes each to the events socket, if there is one. Lines from several tasks (frames,
/// a live source's states) are written one at a time.
final class JSONLines: @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle
    private let path: String
    let socket: EventSocket?

    init(path: String?, socket: EventSocket? = nil) throws {
        self.socket = socket
        guard let path else {
            handle = FileHandle.standardOutput
            self.path = "stdout"
            return
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CommandError("\(path): cannot create the JSON lines file")
        }
        self.handle = handle
        self.path = path
    }

    func write(_ value: some Encodable) throws {
        let line = Data((try jsonString(value) + "\n").utf8)
        lock.lock()
        defer { lock.unlock() }
        socket?.publish(line)
        do {
            try handle.write(contentsOf: line)
        } catch {
            throw CommandError("\(path): cannot write the events: \(error.localizedDescription)")
        }
    }
}

/// What a run did, for stderr at the end.
struct RunSummary: CustomStringConvertible {
    var decoded = 0, analyzed = 0, keyframes = 0, tracks = 0, dropped = 0
    var timings = AnalyzerTimings()
    var sinkMs = 0.0
    /// Drawing and encoding `--video-out`, on its own thread alongside the analysis.
    var videoMs = 0.0
    var seconds = 0.0
    var droppedReaders = 0

    mutating func add(_ analysis: FrameAnalysis) {
        analyzed += 1
        if analysis.keyframe != nil { keyframes += 1 }
        tracks += analysis.events.count { $0.kind == .start }
        timings += analysis.timings
    }

    var description: String {
        func per(_ ms: Double) -> String { analyzed > 0 ? String(format: "%.0f ms", ms / Double(analyzed)) : "-" }
        let stages = "SAM encoder \(per(timings.samEncoder)), CLIP \(per(timings.clipDense)), decoder \(per(timings.decoder)), "
            + "embed \(per(timings.embed)), classify \(per(timings.classify)), track \(per(timings.track)), output \(per(sinkMs))"
            + (videoMs > 0 ? ", video \(per(videoMs)) alongside" : "")
        return "\(decoded) frames decoded, \(analyzed) analyzed (\(keyframes) keyframes), \(dropped) dropped, \(tracks) tracks in "
            + "\(String(format: "%.1f", seconds)) s; per analyzed frame: \(stages)"
            + (droppedReaders > 0 ? "; \(droppedReaders) slow socket readers dropped" : "")
    }
}

/// A `frame` event (see docs/events.schema.json).
struct FrameRecord: Encodable {
    var type = "frame"
    var source: String
    var frame: Int
    var pts: Double
    var width: Int
    var height: Int
    var keyframe: Bool
    var segments: [FrameSegment]
    var stuff: [StuffRecord]

    init(source: String, frame: Int, pts: Double, width: Int, height: Int, analysis: FrameAnalysis, names: [String]) {
        (self.source, self.frame, self.pts, self.width, self.height) = (source, frame, pts, width, height)
        keyframe = analysis.keyframe != nil
        segments = analysis.segments.compactMap { segment in segment.track.map { FrameSegment(segment, track: $0, names: names) } }
        var stuffArea: [Int: Int] = [:]
        for segment in analysis.segments where segment.track == nil {
            if let label = segment.classification.label { stuffArea[label, default: 0] += segment.mask.area }
        }
        stuff = stuffArea.keys.sorted().map { StuffRecord(label: names[$0], area: stuffArea[$0]!) }
    }
}

struct FrameSegment: Encodable {
    var track: Int
    var label: String
    var score: Double
    var labels: [[LabelScoreValue]]
    var bbox: [Int]
    var area: Int
    var predicted_iou: Double
    var stability: Double
    var rle: CocoRLE

    init(_ segment: AnalyzedSegment, track: Int, names: [String]) {
        let (mask, result) = (segment.mask, segment.classification)
        self.track = track
        label = labelName(result.label, names)
        score = fourDecimals(result.score)
        labels = result.top.map { [.name(names[$0.label]), .probability($0.probability)] }
        bbox = boxXYXYToXYWH(mask.box)
        area = mask.area
        predicted_iou = fourDecimals(mask.predictedIou)
        stability = fourDecimals(mask.stabilityScore)
        rle = CocoRLE(mask.rle)
    }
}

struct StuffRecord: Encodable {
    var label: String
    var area: Int
}

/// A `track` event.
struct TrackRecord: Encodable {
    var type = "track"
    var source: String
    var event: String
    var track: Int
    var label: String
    var previous_label: String?
    var pts: Double
    var best_score: Double
    var lifetime: Double?

    init(_ e: TrackEvent, source: String, names: [String]) {
        self.source = source
        event = e.kind.rawValue
        track = e.track
        label = labelName(e.label, names)
        previous_label = e.kind == .label ? labelName(e.previousLabel, names) : nil
        pts = e.pts
        best_score = fourDecimals(e.bestScore)
        lifetime = e.kind == .end ? e.lifetime : nil
    }
}
