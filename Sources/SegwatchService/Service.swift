// `segwatch serve`: every enabled camera of one config on one engine. The start is a straight
// sequence (models, then each camera's labeler and outputs, then READY), and the stop runs it
// backwards: inputs stopped, the frame in flight finished, tracks ended, outputs flushed and
// closed, STOPPING said before any of it. A reload applies a changed config camera by camera.
import SegwatchBackends
import Foundation
import Logging
import SegwatchCLIP
import SegwatchMedia
import SegwatchPipeline
import SegwatchCheckpoint
import SegwatchSAM
import SegwatchStore
import SegwatchTensor
import Synchronization

/// One camera of the service: its stream, its events, and the task that runs it.
final class Camera: Sendable {
    let config: CameraConfig
    let runner: StreamRunner
    let events: EventLog
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ config: CameraConfig, runner: StreamRunner, events: EventLog) {
        (self.config, self.runner, self.events) = (config, runner, events)
    }

    var name: String { config.name }

    /// Runs the stream on a task of its own; a failure is logged, never passed on.
    func start(logger: Logger) {
        task.withLock { task in
            task = Task { [self] in
                do {
                    let summary = try await runner.run()
                    logger.info("\(name): \(summary.description)")
                } catch {
                    logger.error("\(error)")
                }
                do { try events.close() } catch { logger.error("\(name): \(error)") }
            }
        }
    }

    /// Stops the stream and waits until its outputs are closed.
    func stop() async {
        runner.stop()
        await task.withLock { $0 }?.value
    }
}

/// Runs the cameras of a config on one set of models, fairly sharing the engine.
public final class Service: Sendable {
    public let models: ModelSet
    public let turns = AnalysisTurns()
    /// Every camera's events for the HTTP API, if it serves them.
    private let hub: EventHub?
    private let notifier: SystemdNotifier
    private let logger: Logger
    private struct State {
        var config: ServiceConfig
        var cameras: [String: Camera] = [:]
        var stopping = false
    }
    private let state: Mutex<State>
    /// The segment store every camera writes to, and the search over it (`[store]`).
    public let searcher: TrackSearcher?
    private let storeIndex: TrackIndex?
    /// The latest reload: a new one waits for it, so reloads apply one at a time, in order.
    private let lastReload = Mutex<Task<Void, Never>?>(nil)
    /// Resumed by `stop()`: `run()` waits on it.
    private let stopped = Mutex<(done: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    /// Builds every enabled camera's labeler, analyzer and outputs; a camera whose outputs or
    /// vocabulary cannot be set up is an error here, before anything runs.
    public init(config: ServiceConfig, models: ModelSet, hub: EventHub? = nil, notifier: SystemdNotifier = SystemdNotifier(),
                logger: Logger = Logger(label: "segwatch.serve")) throws {
        self.models = models
        self.hub = hub
        self.notifier = notifier
        self.logger = logger
        if let store = config.store {
            let opened = try openSegmentStore(store.url)
            // The first pass's codes in memory, kept current by this daemon's own writes, and on a
            // fleet's PostgreSQL store also by what other hosts wrote (read before each search).
            let index = TrackIndex(dimension: models.clip.config.embedDim)
            try opened.codes(TrackFilter(), into: index)
            let text = models.text
            searcher = TrackSearcher(store: opened, location: store.url, cache: config.engine.vocabularyCache, index: index,
                                     refreshes: opened is PostgresStore, embedder: { _ in text })
            storeIndex = index
        } else {
            (searcher, storeIndex) = (nil, nil)
        }
        state = Mutex(State(config: config))
        var cameras: [String: Camera] = [:]
        for camera in config.cameras where camera.enabled { cameras[camera.name] = try makeCamera(camera, engine: config.engine) }
        state.withLock { $0.cameras = cameras }
    }

    public var cameraNames: [String] { state.withLock { $0.cameras.keys.sorted() } }

    /// Each running camera's settings and where its stream is, by name.
    public func cameraStatuses() -> [(config: CameraConfig, status: StreamStatus, store: StoreSink.Status?)] {
        state.withLock { $0.cameras.values.sorted { $0.name < $1.name } }.map { ($0.config, $0.runner.status, $0.runner.storeStatus) }
    }

    /// The analyzer of `camera`'s vocabulary and settings, with its label names.
    private func makeAnalyzer(_ camera: CameraConfig, engine: EngineConfig) throws -> (VideoAnalyzer<ComputeBackend>, [String]) {
        var labels = try camera.vocab.map { try Vocabulary(file: $0).labels } ?? []
        labels += try camera.labels.enumerated().map { try VocabularyLabel(parsing: $1, origin: "camera \(camera.name) label \($0 + 1)") }
        let vocabulary = try Vocabulary(labels)
        let templates = try camera.templates.map { try PromptTemplates($0) } ?? .standard
        var options = LabelerOptions()
        options.clipSize = engine.clipSize
        options.dinoSize = engine.dinoSize
        options.generator = engine.generator
        options.classifier.topK = engine.topK
        options.classifier.minimumProbability = engine.minScore
        options.classifier.minimumCosine = engine.minCosine
        let labeler = try models.labeler(vocabulary: vocabulary, templates: templates, background: engine.background, options: options,
                                         cache: engine.vocabularyCache, warn: { [logger] in logger.warning("\(camera.name): \($0)") })
        let names = vocabulary.labels.map(\.name)
        var analyzerOptions = camera.analyzer
        analyzerOptions.stuff = Set(camera.stuff.compactMap { names.firstIndex(of: $0) })
        let state = URL(fileURLWithPath: engine.stateDirectory ?? defaultStateDirectory())
        let trackIDs: any TrackIDSource
        do {
            trackIDs = try PersistentTrackIDs(stateDirectory: state, camera: camera.name)
        } catch {
            logger.warning("\(camera.name): \(error); track ids are seeded from the clock instead")
            trackIDs = ClockSeededTrackIDs()
        }
        return (try VideoAnalyzer(labeler: labeler, options: analyzerOptions, trackIDs: trackIDs), names)
    }

    private func makeCamera(_ camera: CameraConfig, engine: EngineConfig) throws -> Camera {
        do {
            let (analyzer, names) = try makeAnalyzer(camera, engine: engine)
            let socket = try camera.eventsSocket.map { try EventSocket(path: $0, group: camera.socketGroup) }
            var sinks: [any EventSink] = try camera.jsonOut.map { [try JSONLinesFile(path: $0, rotation: camera.jsonRotation)] } ?? []
            if let socket { sinks.append(socket) }
            if let hub { sinks.append(HubFeed(hub)) }
            if let store = searcher?.store as? PostgresStore { sinks.append(FleetEventFeed(store: store)) }
            var settings = StreamSettings(name: camera.name)
            settings.fps = camera.fps
            settings.turns = turns
            // Every input is read as a camera: the newest frame when the engine is free,
            // reconnected for ever; files and lavfi graphs at their own frame rate.
            var input = camera.input
            settings.paced = !input.isLive
            input.isLive = true
            let events = EventLog(sinks: sinks)
            // Frames come at the camera's rate, whatever it is: the video is timed by their pts.
            let video = try camera.videoOut.map { path in
                VideoSink(path: path, fps: camera.input.options["framerate"].flatMap(Double.init) ?? 25, font: try Font.locate(camera.font),
                          segmentSeconds: camera.videoSegmentMinutes * 60)
            }
            let store = try searcher.map { searcher in
                try StoreSink(store: searcher.store, run: try storeRun(camera, analyzer: analyzer, engine: engine),
                              retention: state.withLock { $0.config.store }.map {
                                  StoreSink.Retention(days: $0.retainDays, maxBytes: $0.maxBytes, frameDays: $0.frameRetainDays)
                              },
                              tolerant: true, index: storeIndex, frames: state.withLock { $0.config.store?.frames ?? false })
            }
            let runner = StreamRunner(input: .live(input), analyzer: analyzer, names: names, settings: settings, events: events,
                                      video: video, store: store, logger: Logger(label: "segwatch.\(camera.name)"))
            return Camera(camera, runner: runner, events: events)
        } catch let error as ServiceError {
            throw ServiceError("camera \(camera.name): \(error.description)")
        } catch {
            throw ServiceError("camera \(camera.name): \(error)")
        }
    }

    /// A camera's run as the store records it.
    private func storeRun(_ camera: CameraConfig, analyzer: VideoAnalyzer<ComputeBackend>, engine: EngineConfig) throws -> RunRecord {
        try RunRecord(camera: camera.name, clip: engine.clip, head: engine.head, labels: analyzer.labeler.classifier.labels,
                      templates: try camera.templates.map { try PromptTemplates($0) } ?? .standard, digestMemo: engine.vocabularyCache.digestMemo)
    }

    /// Runs every camera until `stop()`. A camera that fails is logged and the others go on.
    public func run() async {
        let cameras = state.withLock { Array($0.cameras.values) }
        let names = cameras.map(\.name).sorted().joined(separator: ", ")
        logger.info("serving \(cameras.count) cameras (\(names)) on \(models.backend.engine.threads) threads")
        for camera in cameras { camera.start(logger: logger) }
        notifier.ready(status: "\(cameras.count) cameras: \(names)")
        let stopWatchdog = startWatchdog()
        let stopReports = startStatusReports()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = stopped.withLock { stopped in
                if !stopped.done { stopped.waiter = continuation }
                return stopped.done
            }
            if done { continuation.resume() }
        }
        // Every camera at once: each finishes its frame, its tracks and its outputs.
        let running = state.withLock { Array($0.cameras.values) }
        await withTaskGroup(of: Void.self) { group in
            for camera in running { group.addTask { await camera.stop() } }
        }
        stopWatchdog?()
        stopReports?()
    }

    /// `systemctl status`'s line, every 10 s: cameras up and each one's analyzed frames a second.
    private func startStatusReports(every interval: Double = 10) -> (@Sendable () -> Void)? {
        guard notifier.isActive else { return nil }
        let done = Atomic<Bool>(false)
        let thread = Thread { [self] in
            var previous: [String: (analyzed: Int, time: Date)] = [:]
            while !done.load(ordering: .relaxed) {
                let wake = Date().addingTimeInterval(interval)
                while !done.load(ordering: .relaxed), Date() < wake { Thread.sleep(forTimeInterval: 0.1) }
                guard !done.load(ordering: .relaxed) else { return }
                let cameras = state.withLock { $0.cameras.values.sorted { $0.name < $1.name } }
                var parts: [String] = [], up = 0
                for camera in cameras {
                    let status = camera.runner.status, now = Date()
                    if status.state == "connected" { up += 1 }
                    let rate = previous[camera.name].map { Double(status.analyzed - $0.analyzed) / now.timeIntervalSince($0.time) }
                    previous[camera.name] = (status.analyzed, now)
                    parts.append(status.state == "connected"
                                 ? "\(camera.name) " + (rate.map { String(format: "%.2f/s", $0) } ?? "up") : "\(camera.name) \(status.state)")
                }
                notifier.status("\(up) of \(cameras.count) cameras up: " + parts.joined(separator: ", "))
            }
        }
        thread.name = "segwatch.status"
        thread.start()
        return { done.store(true, ordering: .relaxed) }
    }

    /// Stops the service: STOPPING is announced, every camera finishes its frame and its outputs.
    public func stop() {
        let first = state.withLock { state in
            defer { state.stopping = true }
            return !state.stopping
        }
        guard first else { return }
        notifier.stopping(status: "finishing the cameras' outputs")
        logger.info("stopping: finishing the frames in flight and the outputs")
        let waiter = stopped.withLock { stopped in
            stopped.done = true
            defer { stopped.waiter = nil }
            return stopped.waiter
        }
        waiter?.resume()
    }

    /// Reloads after the reloads asked for before (SIGHUP may come twice in a row).
    public func requestReload() {
        lastReload.withLock { last in
            let previous = last
            last = Task { [self] in
                await previous?.value
                await reload()
            }
        }
    }

    /// Reads the config file again and applies it camera by camera: new cameras start, removed
    /// ones stop (their tracks ended, outputs closed), a camera whose vocabulary, analysis
    /// settings or rate changed goes on with its decoder and takes them from its next frame,
    /// and one whose input or outputs changed is restarted. A file with a mistake changes
    /// nothing: the error is logged and the running config stays. [engine] changes need a restart.
    public func reload() async {
        let (file, running, stopping) = state.withLock { ($0.config.file, $0.config, $0.stopping) }
        guard !stopping else { return }
        notifier.send("RELOADING=1")
        defer { notifier.send("READY=1") }
        let config: ServiceConfig
        do {
            config = try ServiceConfig.load(file)
        } catch {
            logger.error("reload: \(error); the running configuration stays")
            return
        }
        if !Self.sameEngine(config.engine, running.engine) {
            logger.warning("reload: [engine] changed; models and threads change only with a restart, the cameras keep the running engine")
        }
        let wanted = Dictionary(config.cameras.filter(\.enabled).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let current = state.withLock { $0.cameras }
        for (name, camera) in current where wanted[name] == nil {
            logger.info("reload: \(name) removed")
            await camera.stop()
            state.withLock { _ = $0.cameras.removeValue(forKey: name) }
        }
        for (name, new) in wanted.sorted(by: { $0.key < $1.key }) {
            do {
                if let camera = current[name] {
                    let old = camera.config
                    if Self.sameStream(old, new) {
                        guard !Self.sameAnalysis(old, new) else { continue }
                        let (analyzer, names) = try await onOwnThread { try self.makeAnalyzer(new, engine: running.engine) }
                        let record = try searcher.map { _ in try storeRun(new, analyzer: analyzer, engine: running.engine) }
                        camera.runner.update(analyzer: analyzer, names: names, fps: new.fps, storeRun: record)
                        logger.info("reload: \(name) takes its new vocabulary and settings; its input goes on")
                        continue
                    }
                    logger.info("reload: \(name)'s input or outputs changed; restarting it")
                    await camera.stop()
                } else {
                    logger.info("reload: \(name) added")
                }
                let camera = try await onOwnThread { try self.makeCamera(new, engine: running.engine) }
                state.withLock { $0.cameras[name] = camera }
                camera.start(logger: logger)
            } catch {
                logger.error("reload: \(error); \(name) is left out")
                state.withLock { _ = $0.cameras.removeValue(forKey: name) }
            }
        }
        state.withLock { $0.config = ServiceConfig(file: file, engine: running.engine, http: running.http, store: running.store,
                                                          cameras: config.cameras) }
        notifier.status("\(cameraNames.count) cameras: \(cameraNames.joined(separator: ", "))")
    }

    /// Runs `body` on a thread of its own: a new labeler embeds its vocabulary (seconds of CLIP),
    /// which must not hold one of Swift's few cooperative threads meanwhile.
    private func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// The same models and engine settings.
    private static func sameEngine(_ a: EngineConfig, _ b: EngineConfig) -> Bool {
        a.sam == b.sam && a.clip == b.clip && a.head == b.head && a.dino == b.dino && a.dinoSize == b.dinoSize && a.threads == b.threads && a.clipSize == b.clipSize
            && a.background == b.background && a.topK == b.topK && a.minScore == b.minScore && a.minCosine == b.minCosine
            && a.generator == b.generator && a.cacheDirectory == b.cacheDirectory && a.stateDirectory == b.stateDirectory
    }

    /// The same input and outputs: the camera's decoder and files can go on.
    private static func sameStream(_ a: CameraConfig, _ b: CameraConfig) -> Bool {
        a.input == b.input && a.jsonOut == b.jsonOut && a.jsonRotation == b.jsonRotation && a.eventsSocket == b.eventsSocket
            && a.socketGroup == b.socketGroup && a.videoOut == b.videoOut && a.videoSegmentMinutes == b.videoSegmentMinutes
            && a.font == b.font
    }

    /// The same vocabulary, analysis settings and rate.
    private static func sameAnalysis(_ a: CameraConfig, _ b: CameraConfig) -> Bool {
        a.labels == b.labels && a.vocab == b.vocab && a.templates == b.templates && a.stuff == b.stuff && a.analyzer == b.analyzer
            && a.fps == b.fps
    }

    /// WATCHDOG=1 every half interval while the engine makes progress: idle, or an analysis
    /// younger than the interval. A stuck analysis stops the pings, and systemd restarts us.
    /// A thread of its own: the cooperative threads may all be busy with long inference (an
    /// analysis, a reload's vocabulary), and a late ping would have systemd kill a healthy service.
    private func startWatchdog() -> (@Sendable () -> Void)? {
        guard let interval = notifier.watchdogInterval else { return nil }
        let done = Atomic<Bool>(false)
        let thread = Thread { [notifier, turns, logger] in
            while !done.load(ordering: .relaxed) {
                if turns.busySeconds < interval { notifier.watchdog() } else {
                    logger.critical("the engine has been on one analysis for \(Int(turns.busySeconds)) s; the watchdog is left to expire")
                }
                let wake = Date().addingTimeInterval(interval / 2)
                while !done.load(ordering: .relaxed), Date() < wake { Thread.sleep(forTimeInterval: min(0.05, interval / 4)) }
            }
        }
        thread.name = "segwatch.watchdog"
        thread.start()
        return { done.store(true, ordering: .relaxed) }
    }
}

/// A camera's feed into the shared hub: closing one camera's events does not close the hub.
private final class HubFeed: EventSink {
    let hub: EventHub
    init(_ hub: EventHub) { self.hub = hub }
    func write(_ line: [UInt8]) { hub.write(line) }
    func close() {}
}
