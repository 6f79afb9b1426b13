// The HTTP API of `segwatch serve` (Hummingbird), on loopback unless told otherwise:
//   GET  /                    the search page (`SearchPage.swift`)
//   GET  /healthz             alive
//   GET  /readyz              200 once the models are loaded and the cameras run, with each one's state; 503 before
//   GET  /metrics             Prometheus text (swift-metrics through swift-prometheus)
//   GET  /api/cameras         each camera's state and counters, as JSON
//   GET  /api/events?since=N  the kept event lines after line N, and the next line's number
//   GET  /api/events/stream   server-sent events: the event lines as they are written
//   POST /api/reload          as SIGHUP
//   GET  /api/search?q=TEXT[&camera=C][&since=T][&until=T][&label=L][&limit=N]
//                             the stored tracks closest to TEXT, best first (`segwatch search --json`'s objects)
//   GET  /api/tracks/ID       one stored track, with its label history, boxes and embedding
//   GET  /api/tracks/ID/thumbnail   its thumbnail (JPEG)
// Any address but loopback requires a bearer token (`[http] token_file`); a request without it gets 401.
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import SegwatchStore
import ServiceLifecycle
import Synchronization

/// What the API serves from: empty while the models load, the running service after.
public final class ServiceHandle: Sendable {
    private let current = Mutex<Service?>(nil)
    public init() {}
    public var service: Service? {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }
}

public final class APIServer: Sendable {
    public let http: HTTPConfig
    private let token: String?
    private let registry: PrometheusCollectorRegistry
    private let hub: EventHub
    private let handle: ServiceHandle
    private let logger: Logger
    /// The running server's group, for `shutdown()`.
    private let group = Mutex<(group: ServiceGroup?, stopped: Bool)>((nil, false))

    /// Reads the token file when there is one; a missing or empty one is an error that names it.
    public init(http: HTTPConfig, registry: PrometheusCollectorRegistry, hub: EventHub, handle: ServiceHandle, logger: Logger) throws {
        self.http = http
        self.registry = registry
        self.hub = hub
        self.handle = handle
        self.logger = logger
        if let file = http.tokenFile {
            guard let token = try? readBearerToken(file) else {
                throw ServiceError("\(file): cannot read the API's bearer token (the [http] token_file)")
            }
            guard token.count >= 16 else { throw ServiceError("\(file): the bearer token must be at least 16 characters") }
            self.token = token
        } else {
            token = nil
        }
    }

    /// Stops taking requests and ends the open ones (an event stream ends with its hub):
    /// `run()` then returns.
    public func shutdown() async {
        let running = group.withLock { state in
            state.stopped = true
            return state.group
        }
        await running?.triggerGracefulShutdown()
    }

    /// Serves until `shutdown()`. `onListening` is called with the port once bound.
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let router = Router()
        if let token { router.add(middleware: BearerToken(token: token)) }
        router.get("healthz") { _, _ in Self.text("ok\n") }
        router.get("/") { _, _ in
            var response = Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: searchPage)))
            response.headers[.contentType] = "text/html; charset=utf-8"
            return response
        }
        router.get("readyz") { [handle] _, _ in
            guard let service = handle.service else {
                return Self.json(#"{"ready":false,"reason":"loading the models"}"#, status: .serviceUnavailable)
            }
            let states = try service.cameraStatuses().map { "\(try jsonString($0.config.name)):\(try jsonString($0.status.state))" }
            return Self.json(#"{"ready":true,"cameras":{"# + states.joined(separator: ",") + "}}")
        }
        router.get("metrics") { [self] _, _ in
            updateScrapeGauges()
            var response = Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: withHelp(registry.emitToString()))))
            response.headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return response
        }
        router.get("api/cameras") { [handle] _, _ in
            let cameras = handle.service?.cameraStatuses() ?? []
            let now = DispatchTime.now().uptimeNanoseconds
            return Self.json(try jsonString(cameras.map { camera in
                CameraRecord(name: camera.config.name, input: camera.config.input.redacted, state: camera.status.state,
                             decoded: camera.status.decoded, analyzed: camera.status.analyzed, dropped: camera.status.dropped,
                             connections: camera.status.connections, analyzed_fps: fourDecimals(camera.status.analyzedFps),
                             last_frame_age: camera.status.lastFrame.map { fourDecimals(Double(now - $0.uptimeNanoseconds) / 1e9) },
                             latency_p50_ms: camera.status.latencyP50Ms.map(fourDecimals),
                             latency_p95_ms: camera.status.latencyP95Ms.map(fourDecimals),
                             store_failed_writes: camera.store?.failedWrites, store_error: camera.store?.lastError,
                             store_buffered_frames: camera.store?.bufferedFrames, store_dropped_frames: camera.store?.droppedFrames)
            }))
        }
        router.get("api/events") { [hub] request, _ in
            let since = request.uri.queryParameters.get("since", as: Int.self) ?? 0
            let (lines, next) = hub.lines(since: since)
            let body = lines.map { String(decoding: $0.dropLast(), as: UTF8.self) }.joined(separator: ",")
            return Self.json(#"{"next":\#(next),"events":[\#(body)]}"#)
        }
        router.get("api/events/stream") { [hub] _, _ in
            let events = hub.subscribe().map { number, line in
                ByteBuffer(string: "id: \(number)\ndata: " + String(decoding: line.dropLast(), as: UTF8.self) + "\n\n")
            }
            var response = Response(status: .ok, body: .init(asyncSequence: events))
            response.headers[.contentType] = "text/event-stream"
            response.headers[.cacheControl] = "no-cache"
            return response
        }
        router.get("api/search") { [handle] request, _ in
            guard let searcher = handle.service?.searcher else { return Self.noStore() }
            let query = request.uri.queryParameters
            func field(_ name: String) -> String? { formField(request.uri.query, name) }
            guard let text = field("q"), !text.trimmingCharacters(in: .whitespaces).isEmpty else {
                return Self.json(#"{"error":"give the text to search for: ?q=..."}"#, status: .badRequest)
            }
            let now = Date()
            var filter = TrackFilter(camera: field("camera"), label: field("label"))
            for (name, keyPath) in [("since", \TrackFilter.since), ("until", \TrackFilter.until)] {
                guard let value = field(name) else { continue }
                guard let date = parseSearchTime(value, now: now) else {
                    return Self.json(try jsonString(["error": "\(name)=\(value) is not a time: give ISO 8601 or a time ago (30m, 24h, 7d)"]),
                                     status: .badRequest)
                }
                filter[keyPath: keyPath] = storeTime(date)
            }
            let limit = query.get("limit", as: Int.self) ?? 20
            guard (1...1000).contains(limit) else { return Self.json(#"{"error":"limit must be in 1...1000"}"#, status: .badRequest) }
            do {
                let (results, searched) = try searcher.search(text, filter: filter, limit: limit)
                let objects = results.map { hit, track in
                    trackResultObject(track, score: hit.score, rank: hit.rank, thumbnail: track.thumbnail == nil ? nil : "/api/tracks/\(track.id)/thumbnail")
                }
                return Self.json(try jsonText(["results": objects, "searched": searched] as [String: Any]))
            } catch {
                return Self.json(try jsonString(["error": "\(error)"]), status: .unprocessableContent)
            }
        }
        router.get("api/tracks/:id") { [handle] _, context in
            guard let searcher = handle.service?.searcher else { return Self.noStore() }
            guard let id = context.parameters.get("id", as: Int64.self), let track = try searcher.store.tracks([id]).first else {
                return Self.json(#"{"error":"no such track"}"#, status: .notFound)
            }
            var object = trackResultObject(track, thumbnail: track.thumbnail == nil ? nil : "/api/tracks/\(track.id)/thumbnail")
            object["embedding"] = track.row.embedding.map(Double.init)
            object["label_history"] = track.labelHistory.map { ["label": $0.label, "previous": $0.previous ?? NSNull()] as [String: Any] }
            object["boxes"] = track.boxes
            return Self.json(try jsonText(object))
        }
        router.get("api/tracks/:id/thumbnail") { [handle] _, context in
            guard let searcher = handle.service?.searcher else { return Self.noStore() }
            guard let id = context.parameters.get("id", as: Int64.self), let thumbnail = try searcher.store.thumbnail(id) else {
                return Self.json(#"{"error":"no such thumbnail"}"#, status: .notFound)
            }
            var response = Response(status: .ok, body: .init(byteBuffer: ByteBuffer(bytes: thumbnail.data)))
            response.headers[.contentType] = thumbnail.format == "png" ? "image/png" : "image/jpeg"
            response.headers[.cacheControl] = "max-age=86400"
            return response
        }
        router.post("api/reload") { [handle] _, _ in
            guard let service = handle.service else { return Self.json(#"{"reload":false,"reason":"loading the models"}"#, status: .serviceUnavailable) }
            service.requestReload()
            return Self.json(#"{"reload":true}"#, status: .accepted)
        }
        let app = Application(router: router, configuration: .init(address: .hostname(http.host, port: http.port), serverName: "segwatch"),
                              onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) }, logger: logger)
        // Signals are segwatch's own (ShutdownSignal): the group stops when told to.
        let serviceGroup = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], cancellationSignals: [], logger: logger))
        let stopped = group.withLock { state in
            state.group = serviceGroup
            return state.stopped
        }
        if stopped { return }
        try await serviceGroup.run()
    }

    /// The gauges read when scraped: each camera up and its last frame's age, the engine's
    /// queue, the process's resident memory and the tensor pool.
    private func updateScrapeGauges() {
        guard let service = handle.service else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        for camera in service.cameraStatuses() {
            let labels = [("camera", camera.config.name)]
            Gauge(label: "segwatch_camera_up", dimensions: labels).record(camera.status.state == "connected" ? 1 : 0)
            if let last = camera.status.lastFrame {
                Gauge(label: "segwatch_last_frame_age_seconds", dimensions: labels).record(Double(now - last.uptimeNanoseconds) / 1e9)
            }
        }
        Gauge(label: "segwatch_engine_queue_depth").record(service.turns.queueDepth)
        Gauge(label: "segwatch_tensor_pool_bytes").record(service.models.backend.engine.storage.statistics.cachedBytes)
        Gauge(label: "segwatch_resident_memory_bytes").record(residentBytes())
    }

    private static func text(_ body: String) -> Response {
        var response = Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: body)))
        response.headers[.contentType] = "text/plain; charset=utf-8"
        return response
    }

    private static func noStore() -> Response {
        json(#"{"error":"this daemon keeps no segment store: add a [store] table to its config"}"#, status: .notFound)
    }

    private static func json(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        var response = Response(status: status, body: .init(byteBuffer: ByteBuffer(string: body + "\n")))
        response.headers[.contentType] = "application/json"
        return response
    }
}

/// What each metric means, as `# HELP` lines. swift-metrics carries no help text, and
/// swift-prometheus refuses (fatally) one name registered with two help texts, so the help is
/// added to the exposition here, before each metric's `# TYPE` line.
let metricHelp: [String: String] = [
    "segwatch_frames_decoded_total": "Frames decoded (or taken from a live source's reader) by camera.",
    "segwatch_frames_analyzed_total": "Frames segmented, labeled and tracked, by camera.",
    "segwatch_frames_dropped_total": "Frames a live source's reader dropped while the engine was busy, by camera.",
    "segwatch_reconnects_total": "Reconnection attempts of a camera's input.",
    "segwatch_keyframes_total": "Keyframes (the full automatic mask generator), by camera and reason.",
    "segwatch_live_tracks": "Tracks live after the camera's last analyzed frame.",
    "segwatch_analyzed_fps": "Analyzed frames a second, smoothed over about ten analyses, by camera.",
    "segwatch_event_latency_seconds": "From a frame taken to its events written, by camera.",
    "segwatch_stage_seconds": "Time of one analyzed frame's stage, by camera and stage.",
    "segwatch_camera_up": "1 while the camera's input is connected, else 0.",
    "segwatch_last_frame_age_seconds": "Seconds since the camera's last analyzed frame's events were written.",
    "segwatch_engine_queue_depth": "Cameras waiting for the engine.",
    "segwatch_tensor_pool_bytes": "Bytes of freed tensor buffers the engine keeps for the next frames.",
    "segwatch_resident_memory_bytes": "Resident memory of the segwatch process.",
]

/// `text` (Prometheus exposition) with a `# HELP` line before each `# TYPE` line whose metric has one.
func withHelp(_ text: String) -> String {
    var result = ""
    result.reserveCapacity(text.utf8.count + 2048)
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first, let help = metricHelp[String(name)] {
            result += "# HELP \(name) \(help)\n"
        }
        result += line
        result += "\n"
    }
    return String(result.dropLast())
}

/// The field `name` of a query string as browsers encode forms (`application/x-www-form-urlencoded`:
/// `+` is a space, then percent-escapes), which the page's `URLSearchParams` sends; nil when absent.
func formField(_ query: String?, _ name: String) -> String? {
    func decoded(_ text: Substring) -> String? { String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
    for pair in (query ?? "").split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        if decoded(parts[0]) == name { return parts.count > 1 ? decoded(parts[1]) : "" }
    }
    return nil
}

/// A camera in `/api/cameras`.
struct CameraRecord: Encodable {
    var name: String
    var input: String
    var state: String
    var decoded: Int
    var analyzed: Int
    var dropped: Int
    var connections: Int
    var analyzed_fps: Double
    var last_frame_age: Double?
    /// Frame taken to events written, over the last 256 analyses.
    var latency_p50_ms: Double?
    var latency_p95_ms: Double?
    /// With a store: the writes that failed, the last error, the frames waiting to be written
    /// and those dropped when that buffer was full.
    var store_failed_writes: Int?
    var store_error: String?
    var store_buffered_frames: Int?
    var store_dropped_frames: Int?
}

/// 401 for a request without `Authorization: Bearer TOKEN`; the comparison takes the same
/// time whatever the prefix that matches.
struct BearerToken<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let given = Array((request.headers[.authorization] ?? "").utf8), expected = Array("Bearer \(token)".utf8)
        var difference = given.count ^ expected.count
        for i in expected.indices { difference |= Int(expected[i] ^ (i < given.count ? given[i] : 0)) }
        guard difference == 0 else {
            var response = Response(status: .unauthorized, body: .init(byteBuffer: ByteBuffer(string: "a bearer token is required\n")))
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await next(request, context)
    }
}

/// The process's resident memory, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
