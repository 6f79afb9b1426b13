import ArgumentParser
import Foundation
import Logging
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchMedia
import SegwatchPipeline
import SegwatchService
import SegwatchStore

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

            Output, one JSON object per line (stdout, or appended to --json-out FILE), each line \
            written whole: a `frame` event per analyzed frame (its segments with track id, the \
            track's voted label and this segment's score for it, the segment's own best label \
            and top labels, bbox [x, y, w, h], area, predicted_iou, stability and COCO RLE; \
            segments with a --stuff label are listed apart with their area, not tracked), \
            `track` events (`start`, `label` when the vote changes, `end` with its best score and \
            lifetime) and `source` events. Every line carries the camera in `source`, the wall \
            clock in `time` (ISO 8601, UTC) and a unique `event_id`; track ids never repeat for \
            a camera, across runs (the counter is kept in --state-dir). The format is \
            docs/events.schema.json. The same lines go to --events-socket for `segwatch tail`; \
            --video-out writes every frame annotated, the analyzed ones at full strength and the \
            frames between them faint (their masks are carried over from the last analysis).

            SIGINT or SIGTERM finishes the frame in flight, ends the tracks, flushes the output, \
            finalizes the video, closes the socket and exits 0; a second signal meanwhile does \
            not interrupt that (SIGKILL does). A run that analyzed nothing exits 1. A summary \
            goes to stderr, and every change of a live source's connection to the log there.
            """)

    @OptionGroup(title: "Input") var input: InputOptions

    @Option(help: "Settings from a profile file (profiles/*.toml: `key = value` lines, the keys being these options' long names); options given here win. Repeatable.")
    var profile: [String] = []

    @OptionGroup var models: LabelerArguments

    @OptionGroup(title: "Vocabulary") var vocabulary: VocabularyOptions

    @OptionGroup var analysis: AnalysisOptions

    @Option(help: "The `source` name in the events (default: the input's file name).")
    var sourceName: String?

    @Option(help: "Append the JSON lines to this file instead of writing them to stdout (a restart adds to it, never truncates it).")
    var jsonOut: String?

    @Option(help: "Write the annotated video here (.mp4, .mkv, .mov): every source frame, with the latest masks, labels, scores and track ids.")
    var videoOut: String?

    @Option(help: "Write --video-out in segments of this many minutes of video, each a file named by the time it started (OUT-YYYYMMDD-HHMMSS.mp4, UTC) and finalized when the next starts: a crash loses at most the open one.")
    var videoSegmentMinutes: Double?

    @Option(help: "Also publish the events on this Unix socket, for any number of readers (`segwatch tail`); a reader that falls behind is dropped.")
    var eventsSocket: String?

    @Option(help: ArgumentHelp("Keep the tracks in this segment store (a SQLite file, made if needed, or a fleet's postgres://USER:PASSWORD@HOST/DATABASE), for 'segwatch search': each track's times, labels, sampled boxes and embedding, each frame committed before its events are written.", valueName: "store"))
    var store: String?

    @Option(help: ArgumentHelp("Delete stored tracks last seen more than this many days ago (checked at the start and every ten minutes).", valueName: "days"))
    var storeRetainDays: Double?

    @Option(help: ArgumentHelp("Delete the oldest stored tracks while the store is larger than this (500M, 20G).", valueName: "size"))
    var storeMaxSize: String?

    @Flag(help: "Keep each analyzed frame's event in the store too ('segwatch tail --store S --since T' prints them).")
    var storeFrames = false

    @Option(help: ArgumentHelp("Delete stored frame events older than this many days.", valueName: "days"))
    var storeFrameRetainDays: Double?

    @Option(help: "Give up on a live source after this many seconds without a frame (connecting or reconnecting); by default it is retried for ever.")
    var giveUpAfter: Double?

    @Option(help: "Folder of state kept between runs: each camera's track counter, so track ids never repeat (default: $SEGWATCH_STATE_DIR, $STATE_DIRECTORY, $XDG_STATE_HOME/segwatch, else ~/.local/state/segwatch).")
    var stateDir: String?

    @Option(help: "Font of the video's labels (TrueType/OpenType; default: $SEGWATCH_FONT, else DejaVu Sans Bold).")
    var font: String?

    func validate() throws {
        try models.requireModels()
        guard !vocabulary.isEmpty else { throw ValidationError("give --label (repeatable) or --vocab FILE") }
        if let videoSegmentMinutes {
            guard videoSegmentMinutes > 0, videoSegmentMinutes.isFinite else { throw ValidationError("--video-segment-minutes must be positive, not \(videoSegmentMinutes)") }
            guard videoOut != nil else { throw ValidationError("--video-segment-minutes needs --video-out") }
        }
        if storeRetainDays != nil || storeMaxSize != nil || storeFrames, store == nil {
            throw ValidationError("--store-retain-days, --store-max-size and --store-frames need --store")
        }
        if storeFrameRetainDays != nil, !storeFrames { throw ValidationError("--store-frame-retain-days needs --store-frames") }
        if let storeFrameRetainDays, !(storeFrameRetainDays > 0 && storeFrameRetainDays.isFinite) {
            throw ValidationError("--store-frame-retain-days must be positive days, not \(storeFrameRetainDays)")
        }
        if let storeRetainDays, !(storeRetainDays > 0 && storeRetainDays.isFinite) {
            throw ValidationError("--store-retain-days must be positive days, not \(storeRetainDays)")
        }
        if let storeMaxSize, parseByteSize(storeMaxSize) == nil {
            throw ValidationError("--store-max-size must be a size such as 500M or 20G, not '\(storeMaxSize)'")
        }
        if let giveUpAfter, !(giveUpAfter > 0 && giveUpAfter.isFinite) { throw ValidationError("--give-up-after must be positive seconds, not \(giveUpAfter)") }
    }

    func run() async throws {
        ShutdownSignal.shared.install(finalizing: true)
        try await runReporting {
            let words = try models.words(vocabulary)
            let names = words.names
            let analyzerOptions = try analysis.analyzerOptions(names: names)
            let spec = input.spec
            // The outputs and the input are opened before the models load, so a bad path is
            // reported at once; the socket, so readers can attach before the first event.
            let stream: StreamInput = spec.isLive ? .live(spec) : .file(try VideoDecoder(spec, options: DecodeOptions(layout: .rgb24)))
            let socket = try eventsSocket.map { try EventSocket(path: $0) }
            let jsonSink: any EventSink = try jsonOut.map { try JSONLinesFile(path: $0) } ?? StandardOutputSink()
            let segmentStore = try store.map { location throws(StoreError) in try openSegmentStore(location) }
            // A fleet's store also carries the events, for `segwatch tail --store`.
            let feed = (segmentStore as? PostgresStore).map { FleetEventFeed(store: $0) }
            let events = EventLog(sinks: [jsonSink] + (socket.map { [$0] } ?? []) + (feed.map { [$0] } ?? []))
            let font = try videoOut.map { _ in try Font.locate(self.font) }
            if let videoOut { try checkWritable(videoOut) }

            var settings = StreamSettings(name: sourceName ?? (spec.isLive ? spec.redacted : URL(fileURLWithPath: input.input).lastPathComponent))
            settings.fps = analysis.fps
            settings.maxFrames = analysis.maxFrames
            settings.giveUpAfter = giveUpAfter
            let labeler = try models.labeler(words, vocabulary: vocabulary)
            let analyzer = try VideoAnalyzer(labeler: labeler, options: analyzerOptions, trackIDs: trackIDs(camera: settings.name))
            let storeSink = try segmentStore.map { segmentStore in
                try StoreSink(store: segmentStore,
                              run: try RunRecord(camera: settings.name, clip: models.clip!, head: models.head, labels: labeler.classifier.labels,
                                                 templates: words.templates, digestMemo: vocabulary.cacheStore()?.digestMemo),
                              retention: StoreSink.Retention(days: storeRetainDays, maxBytes: storeMaxSize.flatMap(parseByteSize),
                                                             frameDays: storeFrameRetainDays),
                              frames: storeFrames)
            }
            var videoFps = 25.0
            if case let .file(decoder) = stream { videoFps = decoder.stream.fps ?? 25 }
            let video = videoOut.map { VideoSink(path: $0, fps: videoFps, font: font!,
                                                 segmentSeconds: videoSegmentMinutes.map { $0 * 60 }) }
            let runner = StreamRunner(input: stream, analyzer: analyzer, names: names, settings: settings, events: events, video: video,
                                      store: storeSink, logger: Logger(label: "segwatch.run"))
            ShutdownSignal.shared.onSignal { runner.stop() }

            let progress = Progress.onTerminal()
            let outcome: Result<RunSummary, any Error>
            do { outcome = .success(try await runner.run { progress.show($0) }) } catch { outcome = .failure(error) }
            progress.clear()
            let closed = Result { try events.close() }
            if var summary = try? outcome.get() {
                summary.droppedReaders = socket?.droppedReaders ?? 0
                printError(summary.description)
            }
            _ = try outcome.get()
            try closed.get()
        }
    }

    /// Track ids that never repeat for this camera: a counter in the state directory, or, where
    /// none can be written, the clock.
    private func trackIDs(camera: String) -> any TrackIDSource {
        let folder = URL(fileURLWithPath: stateDir ?? defaultStateDirectory())
        do {
            return try PersistentTrackIDs(stateDirectory: folder, camera: camera)
        } catch {
            printError("\(error); track ids are seeded from the clock instead")
            return ClockSeededTrackIDs()
        }
    }
}

/// Fails unless a file can be created at `path` (tried and removed when it does not exist yet):
/// an output that cannot be written is found before minutes of model loading.
func checkWritable(_ path: String) throws {
    let existed = FileManager.default.fileExists(atPath: path)
    let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw CommandError("\(path): cannot write the output: \(String(cString: strerror(errno)))") }
    close(fd)
    if !existed { unlink(path) }
}
