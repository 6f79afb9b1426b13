// One stream, start to end: its frames decoded, scheduled, analyzed (segmented, labeled and
// tracked by a `VideoAnalyzer`) and written as events and annotated video. `segwatch run` is a
// thin command over it; `serve` runs one per camera.
import SegwatchBackends
import CMalloc
import Dispatch
import Foundation
import Logging
import SegwatchMedia
import SegwatchPipeline
import SegwatchStore
import SegwatchSAM
import SegwatchTensor
import Synchronization

/// How a stream is run.
public struct StreamSettings: Sendable {
    /// The camera's name: the `source` of its events.
    public var name: String
    /// Analyzed frames per second of video (a file) or of wall time (a live source); 0: every frame.
    public var fps = 1.0
    /// Stop after this many analyzed frames.
    public var maxFrames: Int?
    /// A live source that delivers no frame for this many seconds, connecting and reconnecting,
    /// is given up (nil: it is retried for ever, as a daemon does).
    public var giveUpAfter: Double?
    /// The engine shared with other streams: each analysis of a live source waits its turn.
    public var turns: AnalysisTurns?
    /// A live source that is not paced by nature (a file, lavfi) is read at its own rate.
    public var paced = false

    public init(name: String) { self.name = name }
}

/// Where a stream's frames come from.
public enum StreamInput {
    /// A file (or any finite input), opened beforehand so a bad one is reported at once: every
    /// frame the rate selects is analyzed, none lost.
    case file(VideoDecoder)
    /// A camera or stream: the newest frame is analyzed whenever the engine is free, and the
    /// connection is retried with backoff.
    case live(InputSpec)
}

/// Where a run is, for a progress display.
public struct StreamProgress: Sendable {
    public var decoded: Int
    public var analyzed: Int
    /// The analyzed frames a file will give (the rate and `maxFrames` applied), when its header says.
    public var expectedAnalyzed: Int?
    public var liveTracks: Int
    public var seconds: Double
}

/// Where a running stream is, read by other threads (the service's status, later its metrics).
public struct StreamStatus: Sendable, Equatable {
    /// The input's connection: `connecting`, `connected`, `disconnected`, `reconnecting` or `ended`
    /// (the names of `source` events); a file is `connected` while it is read.
    public var state = "connecting"
    public var decoded = 0
    public var analyzed = 0
    /// Frames a live source's reader dropped while the engine was busy.
    public var dropped = 0
    /// Successful connections of a live source.
    public var connections = 0
    /// Analyzed frames a second, smoothed over about ten analyses.
    public var analyzedFps = 0.0
    /// When the last analyzed frame's events were written.
    public var lastFrame: DispatchTime?
    /// From a frame taken to its events written, over the last analyses: the median and the
    /// 95th percentile in milliseconds (nil before the first).
    public var latencyP50Ms: Double? { recentLatencies.percentile(0.5) }
    public var latencyP95Ms: Double? { recentLatencies.percentile(0.95) }
    var recentLatencies = RecentValues(capacity: 256)
}

/// The last `capacity` values recorded, for percentiles over a recent window.
struct RecentValues: Sendable, Equatable {
    private var values: [Double] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    mutating func record(_ value: Double) {
        if values.count < capacity { values.append(value) } else { values[next] = value }
        next = (next + 1) % capacity
    }

    func percentile(_ p: Double) -> Double? { nearestRankPercentile(values, p) }
}

/// The nearest-rank percentile `p` (in 0...1) of `values`; nil when there are none.
func nearestRankPercentile(_ values: [Double], _ p: Double) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
}

/// What a run did.
public struct RunSummary: CustomStringConvertible, Sendable {
    public var decoded = 0, analyzed = 0, keyframes = 0, tracks = 0, dropped = 0
    public var timings = AnalyzerTimings()
    public var sinkMs = 0.0
    /// Drawing and encoding the video, on its own thread alongside the analysis.
    public var videoMs = 0.0
    public var seconds = 0.0
    public var droppedReaders = 0

    mutating func add(_ analysis: FrameAnalysis) {
        analyzed += 1
        if analysis.keyframe != nil { keyframes += 1 }
        tracks += analysis.events.count { $0.kind == .start }
        timings += analysis.timings
    }

    public var description: String {
        func per(_ ms: Double) -> String { analyzed > 0 ? String(format: "%.0f ms", ms / Double(analyzed)) : "-" }
        let stages = "SAM encoder \(per(timings.samEncoder)), CLIP \(per(timings.clipDense)), decoder \(per(timings.decoder)), "
            + "masks \(per(timings.masks)), embed \(per(timings.embed)), classify \(per(timings.classify)), track \(per(timings.track)), output \(per(sinkMs))"
            + (videoMs > 0 ? ", video \(per(videoMs)) alongside" : "")
        return "\(decoded) frames decoded, \(analyzed) analyzed (\(keyframes) keyframes), \(dropped) dropped, \(tracks) tracks in "
            + "\(String(format: "%.1f", seconds)) s; per analyzed frame: \(stages)"
            + (droppedReaders > 0 ? "; \(droppedReaders) slow socket readers dropped" : "")
    }
}

/// Runs one stream through an analyzer into its outputs.
///
/// A file runs as four stages on threads of their own, joined by bounded channels: decoding
/// (a few frames ahead), the schedule and the image encoders (one analyzed frame ahead: they
/// depend on the picture alone), the segmentation, labeling and tracking (which depend on the
/// previous frame's tracks), and the video. A live source's reader keeps only the newest
/// frame, which is analyzed whenever the engine is free.
///
/// However the run stops (the end, `stop()`, `maxFrames`, an error), what was produced is
/// finished: the tracks are ended with `end` events, the video is finalized, the events are
/// flushed. A run that analyzed nothing is an error.
public final class StreamRunner: @unchecked Sendable {
    public private(set) var settings: StreamSettings
    private let input: StreamInput
    private var analyzer: VideoAnalyzer<ComputeBackend>
    private var names: [String]
    /// A new analyzer (vocabulary, settings) and rate, taken between two frames of a live source.
    private let pendingUpdate = Mutex<(analyzer: VideoAnalyzer<ComputeBackend>, names: [String], fps: Double, storeRun: RunRecord?)?>(nil)
    private let events: EventLog
    private let video: VideoSink?
    private let store: StoreSink?
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)
    private let liveStatus = Mutex(StreamStatus())
    private let metrics: StreamMetrics
    private let stopHandlers = Mutex<[@Sendable () -> Void]>([])

    /// - Parameters:
    ///   - names: the vocabulary's label names, by index.
    ///   - video: the annotated video, if one is written.
    ///   - store: the segment store, if the run is kept: each frame is written there before its events.
    public init(input: StreamInput, analyzer: VideoAnalyzer<ComputeBackend>, names: [String], settings: StreamSettings,
                events: EventLog, video: VideoSink?, store: StoreSink? = nil, logger: Logger) {
        self.input = input
        self.analyzer = analyzer
        self.names = names
        self.settings = settings
        self.events = events
        self.video = video
        self.store = store
        self.logger = logger
        metrics = StreamMetrics(camera: settings.name)
    }

    /// Where the stream is now. Any thread.
    public var status: StreamStatus { liveStatus.withLock { $0 } }

    /// Ends the run soon: the frame in flight is finished, then the outputs. Any thread.
    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        for handler in stopHandlers.withLock({ $0 }) { handler() }
    }

    /// Analyzes the frames from the next one on with `analyzer` (its vocabulary `names`) at
    /// `fps`, keeping the input as it is: the decoder is not restarted. The current tracks end
    /// (their `end` events are written) and the new analyzer starts its own, in a new run of the
    /// store (`storeRun`) when there is one. Live sources only.
    public func update(analyzer: VideoAnalyzer<ComputeBackend>, names: [String], fps: Double, storeRun: RunRecord? = nil) {
        pendingUpdate.withLock { $0 = (analyzer, names, fps, storeRun) }
    }

    /// The store's failed writes and last error, when the run keeps a store.
    public var storeStatus: StoreSink.Status? { store?.status }

    private func onStop(_ handler: @escaping @Sendable () -> Void) {
        stopHandlers.withLock { $0.append(handler) }
        if stopped.load(ordering: .relaxed) { handler() }
    }

    private var more: Bool { !stopped.load(ordering: .relaxed) }

    /// Runs the stream to its end (or `stop()`), calling `progress` after each decoded frame.
    public func run(progress: (StreamProgress) -> Void = { _ in }) async throws -> RunSummary {
        var summary = RunSummary()
        let started = DispatchTime.now()
        var lastPts = 0.0
        var failure: Error?
        let maxFrames = settings.maxFrames

        var expectedAnalyzed: Int?
        func report() {
            progress(StreamProgress(decoded: summary.decoded, analyzed: summary.analyzed, expectedAnalyzed: expectedAnalyzed,
                                    liveTracks: analyzer.tracker.tracks.count, seconds: milliseconds(since: started) / 1000))
        }
        /// One decoded frame: analyzed when its encoders' output is given, then handed to the video.
        var lastAnalysis: DispatchTime?
        func handle(_ frame: VideoFrame, index: Int, pts: Double, encoded: VideoAnalyzer<ComputeBackend>.EncodedFrame?,
                    taken: DispatchTime) throws {
            summary.decoded += 1
            liveStatus.withLock { $0.decoded += 1 }
            metrics.decoded.increment()
            if let encoded {
                lastPts = pts
                let analysis = try analyzer.analyze(encoded, pts: pts)
                summary.add(analysis)
                liveStatus.withLock { $0.analyzed += 1 }
                metrics.record(analysis, liveTracks: analyzer.tracker.tracks.count)
                // A keyframe's generator frees many small allocations of many sizes; what malloc
                // keeps of them goes back to the system, so that weeks of keyframes do not leave
                // the heap fragmented, and so do the tensor buffers no frame took since the last
                // keyframe (see `StoragePool`). A few milliseconds per keyframe.
                if analysis.keyframe != nil {
                    analyzer.labeler.backend.engine.storage.trim()
                    malloc_trim(0)
                }
                let now = DispatchTime.now()
                if let lastAnalysis {
                    // Smoothed over about ten analyses: a rate that a scrape can read at any time.
                    let rate = 1e9 / Double(max(now.uptimeNanoseconds - lastAnalysis.uptimeNanoseconds, 1))
                    let fps = liveStatus.withLock { status in
                        status.analyzedFps = status.analyzedFps == 0 ? rate : 0.9 * status.analyzedFps + 0.1 * rate
                        return status.analyzedFps
                    }
                    metrics.analyzedFps.record(fps)
                }
                lastAnalysis = now
                let sinkStart = DispatchTime.now()
                try write(FrameRecord(source: settings.name, frame: index, pts: pts, width: frame.width, height: frame.height,
                                      analysis: analysis, names: names), analysis: analysis, trackEvents: analysis.events,
                          picture: { frame.packedBytes() })
                let latency = DispatchTime.now().uptimeNanoseconds - taken.uptimeNanoseconds
                metrics.eventLatency.recordNanoseconds(Int64(latency))
                liveStatus.withLock { status in
                    status.lastFrame = .now()
                    status.recentLatencies.record(Double(latency) / 1e6)
                }
                video?.show(analysis, names: names)
                summary.sinkMs += milliseconds(since: sinkStart)
            }
            report()
            video?.append(frame)
            if let error = video?.error { throw error }
        }

        do {
            switch input {
            case let .file(decoder):
                liveStatus.withLock { $0.state = "connected" }
                expectedAnalyzed = Self.expectedAnalyzed(decoder.stream, fps: settings.fps, maxFrames: maxFrames)
                try runFile(decoder, handle: handle)
            case let .live(spec):
                summary.dropped = try await runLive(spec, started: started, handle: handle)
            }
        } catch {
            failure = error
        }
        // Whatever stopped the run, what was produced is finished: tracks ended, video playable.
        do { try endTracks(at: lastPts) } catch { failure = failure ?? error }
        do { try store?.finish(time: events.now) } catch { failure = failure ?? error }
        do { try video?.finish() } catch { failure = failure ?? error }
        summary.seconds = milliseconds(since: started) / 1000
        summary.videoMs = video?.busyMilliseconds ?? 0
        liveStatus.withLock { $0.state = "ended" }
        if let failure { throw failure }
        if summary.analyzed == 0 {
            throw ServiceError("\(settings.name): nothing was analyzed" + (stopped.load(ordering: .relaxed) ? " before the stop" : ""))
        }
        return summary
    }

    /// Ends every live track, with its `end` event.
    private func endTracks(at pts: Double) throws {
        try write(nil, analysis: nil, trackEvents: analyzer.finish(pts: pts))
    }

    /// A frame's events (`frame`, then its `track` events, with this stream's name and label
    /// names), after the store has them: what a reader sees is already kept.
    private func write(_ frame: FrameRecord?, analysis: FrameAnalysis?, trackEvents: [TrackEvent], picture: () -> [UInt8]? = { nil }) throws {
        let time = events.now
        let tracks = trackEvents.map { TrackRecord($0, source: settings.name, names: names) }
        try store?.write(frame: frame, tracks: tracks, analysis: analysis, picture: picture, time: time)
        if let frame { try events.write(frame, at: time) }
        for record in tracks { try events.write(record, at: time) }
    }

    /// The analyzed frames a file gives, from its header: every `1/fps` seconds of it, at most `maxFrames`.
    static func expectedAnalyzed(_ stream: VideoStreamInfo, fps: Double, maxFrames: Int?) -> Int? {
        let total = stream.announcedFrames ?? stream.duration.flatMap { duration in stream.fps.map { Int(duration * $0) } }
        guard var expected = total, expected > 0 else { return maxFrames }
        if fps > 0, let duration = stream.duration ?? stream.fps.map({ Double(expected) / $0 }) {
            expected = min(expected, Int((duration * fps).rounded(.up)))
        }
        return min(expected, maxFrames ?? .max)
    }

    /// A file: exactly the frames the rate selects, none lost.
    private func runFile(_ decoder: VideoDecoder,
                         handle: (VideoFrame, Int, Double, VideoAnalyzer<ComputeBackend>.EncodedFrame?, DispatchTime) throws -> Void) throws {
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
        typealias Scheduled = (frame: VideoFrame, pts: Double, encoded: VideoAnalyzer<ComputeBackend>.EncodedFrame?, taken: DispatchTime)
        let scheduled = BoundedChannel<Result<Scheduled, any Error>>(capacity: 2)
        let fallbackFps = decoder.stream.fps ?? 25
        let (analyzer, fps, maxFrames) = (self.analyzer, settings.fps, settings.maxFrames)
        let encoder = StageThread(name: "encode") {
            defer { scheduled.close() }
            var schedule = FrameSchedule(fps: fps)
            var selected = 0
            while let item = decoded.receive() {
                let result = Result { () throws -> Scheduled in
                    let frame = try item.get()
                    let taken = DispatchTime.now()
                    let pts = frame.pts ?? Double(frame.index) / fallbackFps
                    guard schedule.selects(pts: pts), maxFrames.map({ selected < $0 }) ?? true else { return (frame, pts, nil, taken) }
                    selected += 1
                    return (frame, pts, try analyzer.encode(RGBImage(frame)), taken)
                }
                guard scheduled.send(result), case .success = result else { break }
            }
            decoded.cancel()
        }
        onStop {
            scheduled.cancel()
            decoded.cancel()
        }
        defer {
            scheduled.cancel()
            decoded.cancel()
            encoder.wait()
            reader.wait()
        }
        var analyzed = 0
        while more, maxFrames.map({ analyzed < $0 }) ?? true, let item = scheduled.receive() {
            let next = try item.get()  // a damaged input: what came before it is kept
            if next.encoded != nil { analyzed += 1 }
            try handle(next.frame, next.frame.index, next.pts, next.encoded, next.taken)
        }
    }

    /// A live source: its reader keeps only the newest frame, so each analysis takes the newest
    /// one when the engine is free (at most `fps` a second of wall time); what the reader
    /// dropped meanwhile is counted. Its timestamps start again at each reconnection, so frames
    /// are numbered and timed from the start of the run instead. Returns the frames dropped.
    private func runLive(_ spec: InputSpec, started: DispatchTime,
                         handle: (VideoFrame, Int, Double, VideoAnalyzer<ComputeBackend>.EncodedFrame?, DispatchTime) throws -> Void) async throws -> Int {
        let live = LiveSource(spec, options: DecodeOptions(layout: .rgb24), bufferSize: 1, paced: settings.paced)
        onStop { live.stop() }
        // Frames or a connection reset the give-up clock; the state task checks it on each retry.
        let lastSign = Mutex(DispatchTime.now())
        let gaveUp = Mutex<String?>(nil)
        let (name, events, logger, giveUpAfter, metrics) = (settings.name, events, logger, settings.giveUpAfter, metrics)
        let states = Task {
            for await state in live.states {
                let record = SourceRecord(state, source: name)
                self.liveStatus.withLock { status in
                    status.state = record.state
                    status.connections = live.connections
                }
                if case .reconnecting = state { metrics.reconnects.increment() }
                if case .connected = state { lastSign.withLock { $0 = .now() } }
                let routine = state == .connected || state.name == "connecting" || state == .stopped(error: nil)
                logger.log(level: routine ? .info : .warning, "\(record.logText)")
                try? events.write(record)
                if case let .reconnecting(_, _, error) = state, let giveUpAfter,
                   milliseconds(since: lastSign.withLock { $0 }) / 1000 >= giveUpAfter {
                    gaveUp.withLock { $0 = "\(name): gave up after \(Int(giveUpAfter)) s without a frame: \(error)" }
                    live.stop()
                }
            }
        }
        var frameCount = 0, analyzed = 0
        var next = 0.0
        /// Frames received but passed over for a newer one that came while waiting for a turn.
        var passedOver = 0
        func countDrops() {
            let dropped = live.dropped + passedOver
            let newlyDropped = liveStatus.withLock { status in
                defer { status.dropped = dropped }
                return dropped - status.dropped
            }
            if newlyDropped > 0 { metrics.dropped.increment(by: Int64(newlyDropped)) }
        }
        var frames = live.frames.makeAsyncIterator()
        do {
            while var frame = await frames.next() {
                lastSign.withLock { $0 = .now() }
                countDrops()
                guard more, settings.maxFrames.map({ analyzed < $0 }) ?? true else { break }
                if let update = pendingUpdate.withLock({ pending in defer { pending = nil }; return pending }) {
                    try endTracks(at: fourDecimals(milliseconds(since: started) / 1000))
                    if let record = update.storeRun { try store?.beginRun(record, time: events.now) }
                    (analyzer, names, settings.fps, next) = (update.analyzer, update.names, update.fps, 0)
                    logger.info("\(settings.name): analyzing with the new settings from the next frame")
                }
                var taken = DispatchTime.now()
                var now = milliseconds(since: started) / 1000
                let analyze = now >= next
                if analyze, settings.fps > 0 { next = now + 1 / settings.fps }
                if analyze, let turns = settings.turns {
                    let seen = live.delivered
                    await turns.acquire()
                    // While this camera waited for its turn, its reader went on: the newest frame
                    // is analyzed, not the one that was newest when the wait began.
                    if live.delivered > seen, let newer = await frames.next() {
                        (frame, taken, now) = (newer, .now(), milliseconds(since: started) / 1000)
                        passedOver += 1
                        countDrops()
                    }
                }
                defer { if analyze { settings.turns?.release() } }
                let encoded = analyze ? try analyzer.encode(RGBImage(frame)) : nil
                if encoded != nil { analyzed += 1 }
                try handle(frame, frameCount, fourDecimals(now), encoded, taken)
                frameCount += 1
            }
        } catch {
            live.stop()
            await states.value
            throw error
        }
        live.stop()
        await states.value
        if let reason = gaveUp.withLock({ $0 }) { throw ServiceError(reason) }
        return live.dropped
    }
}
