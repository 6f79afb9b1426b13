// `segwatch serve`: every enabled camera of one config on one engine. The start is a straight
// sequence (models, then each camera's labeler and outputs, then READY), and the stop runs it
// backwards: inputs stopped, the frame in flight finished, tracks ended, outputs flushed and
// closed, STOPPING said before any of it.
import Foundation
import Logging
import SegwatchCLIP
import SegwatchMedia
import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor
import Synchronization

/// One camera of the service: its stream, its events and what it has done.
public final class Camera: Sendable {
    public let config: CameraConfig
    let runner: StreamRunner
    let events: EventLog
    let socket: EventSocket?

    init(_ config: CameraConfig, runner: StreamRunner, events: EventLog, socket: EventSocket?) {
        (self.config, self.runner, self.events, self.socket) = (config, runner, events, socket)
    }

    public var name: String { config.name }
}

/// Runs the cameras of a config on one set of models, fairly sharing the engine.
public final class Service: Sendable {
    public let config: ServiceConfig
    public let models: ModelSet
    public let turns = AnalysisTurns()
    private let notifier: SystemdNotifier
    private let logger: Logger
    private let cameras: [Camera]
    private let stopping = Atomic<Bool>(false)

    /// Builds every enabled camera's labeler, analyzer and outputs; a camera whose outputs or
    /// vocabulary cannot be set up is an error here, before anything runs.
    public init(config: ServiceConfig, models: ModelSet, notifier: SystemdNotifier = SystemdNotifier(),
                logger: Logger = Logger(label: "segwatch.serve")) throws {
        self.config = config
        self.models = models
        self.notifier = notifier
        self.logger = logger
        let state = URL(fileURLWithPath: config.engine.stateDirectory ?? defaultStateDirectory())
        let cache = VocabularyCache(directory: config.engine.cacheDirectory.map { URL(fileURLWithPath: $0) } ?? VocabularyCache.defaultDirectory)
        var options = LabelerOptions()
        options.clipSize = config.engine.clipSize
        options.generator = config.engine.generator
        options.classifier.topK = config.engine.topK
        options.classifier.minimumProbability = config.engine.minScore
        options.classifier.minimumCosine = config.engine.minCosine
        var cameras: [Camera] = []
        for camera in config.cameras where camera.enabled {
            func fail(_ error: Error) -> ServiceError { ServiceError("camera \(camera.name): \(error)") }
            do {
                var labels = try camera.vocab.map { try Vocabulary(file: $0).labels } ?? []
                labels += try camera.labels.enumerated().map { try VocabularyLabel(parsing: $1, origin: "camera \(camera.name) label \($0 + 1)") }
                let vocabulary = try Vocabulary(labels)
                let templates = try camera.templates.map { try PromptTemplates($0) } ?? .standard
                let labeler = try models.labeler(vocabulary: vocabulary, templates: templates, background: config.engine.background,
                                                 options: options, cache: cache, warn: { logger.warning("\(camera.name): \($0)") })
                let names = vocabulary.labels.map(\.name)
                var analyzerOptions = camera.analyzer
                analyzerOptions.stuff = Set(camera.stuff.compactMap { names.firstIndex(of: $0) })
                let trackIDs: any TrackIDSource
                do {
                    trackIDs = try PersistentTrackIDs(stateDirectory: state, camera: camera.name)
                } catch {
                    logger.warning("\(camera.name): \(error); track ids are seeded from the clock instead")
                    trackIDs = ClockSeededTrackIDs()
                }
                let analyzer = try VideoAnalyzer(labeler: labeler, options: analyzerOptions, trackIDs: trackIDs)
                let socket = try camera.eventsSocket.map { try EventSocket(path: $0, group: camera.socketGroup) }
                var sinks: [any EventSink] = try camera.jsonOut.map { [try JSONLinesFile(path: $0, rotation: camera.jsonRotation)] } ?? []
                if let socket { sinks.append(socket) }
                let events = EventLog(sinks: sinks)
                var settings = StreamSettings(name: camera.name)
                settings.fps = camera.fps
                settings.turns = turns
                // Every input is read as a camera: the newest frame when the engine is free,
                // reconnected for ever; files and lavfi graphs at their own frame rate.
                var input = camera.input
                settings.paced = !input.isLive
                input.isLive = true
                let runner = StreamRunner(input: .live(input), analyzer: analyzer, names: names, settings: settings, events: events,
                                          video: nil, logger: Logger(label: "segwatch.\(camera.name)"))
                cameras.append(Camera(camera, runner: runner, events: events, socket: socket))
            } catch let error as ServiceError {
                throw ServiceError("camera \(camera.name): \(error.description)")
            } catch {
                throw fail(error)
            }
        }
        self.cameras = cameras
    }

    public var cameraNames: [String] { cameras.map(\.name) }

    /// Runs every camera until `stop()`. A camera that fails is logged and the others go on.
    public func run() async {
        let names = cameras.map(\.name).joined(separator: ", ")
        logger.info("serving \(cameras.count) cameras (\(names)) on \(models.backend.engine.threads) threads")
        notifier.ready(status: "\(cameras.count) cameras: \(names)")
        let watchdog = Task { await pingWatchdog() }
        await withTaskGroup(of: Void.self) { group in
            for camera in cameras {
                group.addTask { [logger] in
                    do {
                        let summary = try await camera.runner.run()
                        logger.info("\(camera.name): \(summary.description)")
                    } catch {
                        logger.error("\(error)")
                    }
                    do { try camera.events.close() } catch { logger.error("\(camera.name): \(error)") }
                }
            }
        }
        watchdog.cancel()
        _ = await watchdog.value
    }

    /// Stops the service: STOPPING is announced, every camera finishes its frame and its outputs.
    public func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        notifier.stopping(status: "finishing \(cameras.count) cameras' outputs")
        logger.info("stopping: finishing the frames in flight and the outputs")
        for camera in cameras { camera.runner.stop() }
    }

    /// WATCHDOG=1 every half interval while the engine makes progress: idle, or an analysis
    /// younger than the interval. A stuck analysis stops the pings, and systemd restarts us.
    private func pingWatchdog() async {
        guard let interval = notifier.watchdogInterval else { return }
        while !Task.isCancelled {
            if turns.busySeconds < interval { notifier.watchdog() } else {
                logger.critical("the engine has been on one analysis for \(Int(turns.busySeconds)) s; the watchdog is left to expire")
            }
            try? await Task.sleep(nanoseconds: UInt64(interval / 2 * 1e9))
        }
    }
}
