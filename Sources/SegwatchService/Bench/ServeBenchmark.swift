import Dispatch
import Foundation

/// `segwatch bench serve`: the daemon itself, as a child process (`executable serve`), with one
/// camera and then with `cameras`; each camera's rate, drops and event latency read from
/// `/api/cameras`, `/metrics` timed meanwhile, peak resident sizes from /proc.
public struct ServeBenchmark: Sendable {
    public var cameras = 4
    public var sam: String
    public var clip: String
    public var threads = 2
    public var warmup = 20.0
    public var seconds = 60.0
    /// The lavfi test patterns' size, WIDTHxHEIGHT.
    public var size = "320x240"
    /// A video served to every camera over loopback RTSP by `rtspServer`, instead of lavfi.
    public var media: String?
    public var rtspServer: String?
    /// Kill the first camera's RTSP server for the middle third of the measurement, then start it again.
    public var restartOne = false
    /// The generator's points per side and the discovery grid's; nil leaves serve's defaults
    /// (32 and 8).
    public var pointsPerSide: Int? = 3
    public var discoveryGrid: Int? = 3
    /// `bench pipeline`'s settings for random weights, whose masks overlap so much that they
    /// would merge and cover little: an NMS that suppresses nothing, no track merged into
    /// another, no keyframe for lost coverage, and 50 segments a frame at most (the best
    /// predicted IoU first).
    public var liveSettings = false
    /// Every camera's tracks kept in a segment store (`[store]`, a SQLite file in the run's
    /// folder, or `storeURL`): its cost on the analysis rate.
    public var store = false
    public var storeURL: String?
    /// Configuration lines added as they are, each replacing the bench's own setting of that
    /// key: the engine's keys (`clip_size = 272`, `precision = "bfloat16"`) in `[engine]`, the
    /// others in every `[[camera]]` (`keyframe_slices = 32`, `labels = [...]`): settings to compare.
    public var settings: [String] = []
    /// The segwatch binary to run `serve` with.
    public var executable: String

    public init(sam: String, clip: String, executable: String) {
        (self.sam, self.clip, self.executable) = (sam, clip, executable)
    }

    /// Both runs, `progress` told what starts.
    public func run(progress: (String) -> Void = { _ in }) throws -> ServeBenchResult {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-bench-serve-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var result = ServeBenchResult(source: media.map { "rtsp:" + $0 } ?? "lavfi:testsrc \(size)", threads: threads,
                                      warmup_s: warmup, seconds: seconds)
        if cameras > 1 {
            progress("one camera: \(Int(warmup + seconds)) s")
            result.peak_rss_mb_one_camera = try measure(cameras: 1, folder: folder.appendingPathComponent("one"), restart: false, progress: progress).peakRSS
        }
        progress("\(cameras) cameras: \(Int(warmup + seconds)) s")
        let run = try measure(cameras: cameras, folder: folder.appendingPathComponent("all"), restart: restartOne, progress: progress)
        result.cameras = run.cameras
        result.peak_rss_mb = run.peakRSS
        result.peak_rss_mb_one_camera = result.peak_rss_mb_one_camera ?? run.peakRSS
        result.metrics_p50_ms = nearestRankPercentile(run.metricsMs, 0.5) ?? .nan
        result.metrics_p95_ms = nearestRankPercentile(run.metricsMs, 0.95) ?? .nan
        let rates = run.cameras.map(\.analyzed_fps)
        result.fairness = (rates.max() ?? 0) / max(rates.min() ?? 0, 1e-9)
        result.restart = run.restart
        result.stage_ms_per_frame = run.stageMsPerFrame
        return result
    }

    /// What one daemon did over the measured window.
    private struct Measured {
        var cameras: [ServeBenchResult.Camera]
        var peakRSS: Double
        var metricsMs: [Double]
        var restart: ServeBenchResult.Restart?
        var stageMsPerFrame: [String: Double]
    }

    private func measure(cameras count: Int, folder: URL, restart: Bool, progress: (String) -> Void) throws -> Measured {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let names = (1...count).map { "camera\($0)" }
        var servers: [Int: Process] = [:], ports: [Int: Int] = [:]
        defer { for server in servers.values { killProcess(server) } }
        var inputs: [String] = []
        for index in names.indices {
            if let media, let rtspServer {
                ports[index] = try freeLoopbackPort()
                servers[index] = try startRTSPServer(script: rtspServer, media: media, port: ports[index]!)
                inputs.append("rtsp://127.0.0.1:\(ports[index]!)/stream")
            } else {
                // Different patterns, so that the cameras' segments differ.
                inputs.append("lavfi:\(index % 2 == 0 ? "testsrc" : "testsrc2")=size=\(size):rate=25")
            }
        }
        let port = try freeLoopbackPort()
        let config = folder.appendingPathComponent("segwatch.toml").path
        try configText(names: names, inputs: inputs, port: port, folder: folder).write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: executable)
        daemon.arguments = ["serve", "--config", config]
        daemon.standardInput = FileHandle.nullDevice
        daemon.standardOutput = FileHandle.nullDevice
        let log = folder.appendingPathComponent("serve.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        daemon.standardError = try FileHandle(forWritingTo: log)
        try daemon.run()
        defer { stopProcess(daemon) }
        func failure(_ what: String) -> Error {
            let tail = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(5).joined(separator: "\n")
            return ServiceError("bench serve: \(what); the daemon's last lines:\n\(tail)")
        }

        // Running: every camera has analyzed a frame.
        let started = DispatchTime.now()
        // The API answers once it is up; the cameras once the models are loaded.
        while ((try? statuses(port: port)) ?? []).count(where: { $0.analyzed > 0 }) < count {
            guard daemon.isRunning else { throw failure("the daemon stopped") }
            guard elapsed(since: started) < 600 else { throw failure("the cameras did not all analyze a frame within 600 s") }
            Thread.sleep(forTimeInterval: 0.5)
        }
        Thread.sleep(forTimeInterval: warmup)

        // The window (thirds with a restart), /metrics asked twice a second meanwhile.
        let cuts = restart ? [0, seconds / 3, 2 * seconds / 3, seconds] : [0, seconds]
        var snapshots: [(time: DispatchTime, cameras: [CameraRecordFigures])] = []
        var metricsMs: [Double] = []
        // The window's first and last scrape, for each stage's seconds over the window.
        var scrapes: (first: String, last: String)?
        let windowStart = DispatchTime.now()
        for (index, cut) in cuts.enumerated() {
            while elapsed(since: windowStart) < cut {
                guard daemon.isRunning else { throw failure("the daemon stopped") }
                let asked = DispatchTime.now()
                let metrics = try httpRequest(host: "127.0.0.1", port: port, path: "/metrics")
                guard metrics.status == 200 else { throw failure("/metrics answered \(metrics.status)") }
                metricsMs.append(elapsed(since: asked) * 1000)
                scrapes = (scrapes?.first ?? metrics.body, metrics.body)
                Thread.sleep(forTimeInterval: max(0, min(0.5, cut - elapsed(since: windowStart))))
            }
            snapshots.append((.now(), try statuses(port: port)))
            if restart, let first = servers[0], let media, let rtspServer {
                if index == 1 {
                    progress("camera1's RTSP server killed")
                    killProcess(first)
                } else if index == 2 {
                    progress("camera1's RTSP server started again")
                    servers[0] = try startRTSPServer(script: rtspServer, media: media, port: ports[0]!)
                }
            }
        }
        let peak = peakResidentMegabytes(daemon.processIdentifier)

        /// Each camera's analyzed frames a second between two snapshots.
        func rates(_ from: Int, _ to: Int) -> [String: Double] {
            let elapsed = Double(snapshots[to].time.uptimeNanoseconds - snapshots[from].time.uptimeNanoseconds) / 1e9
            var rates: [String: Double] = [:]
            for camera in snapshots[to].cameras {
                let before = snapshots[from].cameras.first { $0.name == camera.name }?.analyzed ?? 0
                rates[camera.name] = Double(camera.analyzed - before) / elapsed
            }
            return rates
        }
        let measured = rates(0, restart ? 1 : snapshots.count - 1)
        let cameras = snapshots.last!.cameras.map { camera in
            ServeBenchResult.Camera(name: camera.name, analyzed_fps: measured[camera.name] ?? 0,
                                    drops: camera.dropped - (snapshots[0].cameras.first { $0.name == camera.name }?.dropped ?? 0),
                                    latency_p50_ms: camera.latency_p50_ms, latency_p95_ms: camera.latency_p95_ms)
        }
        var restartFigures: ServeBenchResult.Restart?
        if restart {
            let (before, down, after) = (rates(0, 1), rates(1, 2), rates(2, 3))
            let others = names.dropFirst()
            let falls = others.flatMap { name in [down[name]!, after[name]!].map { 100 * (1 - $0 / max(before[name]!, 1e-9)) } }
            restartFigures = .init(camera: names[0], others_fps_before: before.filter { others.contains($0.key) },
                                   others_fps_down: down.filter { others.contains($0.key) },
                                   others_fps_after: after.filter { others.contains($0.key) },
                                   restarted_camera_fps_after: after[names[0]] ?? 0,
                                   largest_drop_percent: max(0, falls.max() ?? 0))
        }
        // Per frame analyzed in the window, over all cameras: where an analyzed frame's time goes.
        let analyzed = snapshots.last!.cameras.map(\.analyzed).reduce(0, +) - snapshots[0].cameras.map(\.analyzed).reduce(0, +)
        var stageMsPerFrame: [String: Double] = [:]
        if let scrapes, analyzed > 0 {
            let first = stageSeconds(scrapes.first)
            for (stage, total) in stageSeconds(scrapes.last) { stageMsPerFrame[stage] = (total - (first[stage] ?? 0)) * 1000 / Double(analyzed) }
        }
        return Measured(cameras: cameras, peakRSS: peak, metricsMs: metricsMs, restart: restartFigures, stageMsPerFrame: stageMsPerFrame)
    }

    func configText(names: [String], inputs: [String], port: Int, folder: URL) -> String {
        let key = { (setting: String) in setting.split(separator: "=", maxSplits: 1).first?.trimmingCharacters(in: .whitespaces) ?? setting }
        /// `own`'s lines less those whose key `chosen` sets, then `chosen`'s.
        func merged(_ own: [String], _ chosen: [String]) -> [String] {
            let keys = Set(chosen.map(key))
            return own.filter { !keys.contains(key($0)) } + chosen
        }
        let engineSettings = settings.filter { EngineConfig.keys.contains(key($0)) }
        let cameraSettings = settings.filter { !EngineConfig.keys.contains(key($0)) }
        let engine = ["sam = \(tomlString(sam))", "clip = \(tomlString(clip))", "threads = \(threads)",
                      "state_dir = \(tomlString(folder.appendingPathComponent("state").path))",
                      "cache_dir = \(tomlString(folder.appendingPathComponent("cache").path))"]
        var text = """
            [engine]
            \(merged(engine, engineSettings).joined(separator: "\n"))

            [engine.generator]
            \(pointsPerSide.map { "points_per_side = \($0)" } ?? "")
            pred_iou_thresh = 0
            stability_score_thresh = 0
            \(liveSettings ? "box_nms_thresh = 1" : "")

            [http]
            listen = "127.0.0.1:\(port)"

            \(store ? "[store]\nurl = \(tomlString(storeURL ?? folder.appendingPathComponent("tracks.sqlite").path))\n" : "")
            """
        for (name, input) in zip(names, inputs) {
            var own = [#"labels = ["car", "person", "bicycle", "tree", "road"]"#, "tracked_min_iou = 0", "keyframe_below_iou = 0"]
            own += discoveryGrid.map { ["discovery_grid = \($0)"] } ?? []
            own += liveSettings ? ["keyframe_below_coverage = 0", "duplicate_iou = 1", "max_segments = 50"] : []
            text += """

                [[camera]]
                name = "\(name)"
                input = \(tomlString(input))
                fps = 0
                json_out = \(tomlString(folder.appendingPathComponent("\(name).jsonl").path))
                \(merged(own, cameraSettings).joined(separator: "\n"))

                """
        }
        return text
    }

    private func statuses(port: Int) throws -> [CameraRecordFigures] {
        let response = try httpRequest(host: "127.0.0.1", port: port, path: "/api/cameras")
        guard response.status == 200 else { throw ServiceError("bench serve: /api/cameras answered \(response.status)") }
        return try JSONDecoder().decode([CameraRecordFigures].self, from: Data(response.body.utf8))
    }

    private func elapsed(since start: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }
}

/// The seconds of each analysis stage in a `/metrics` text, summed over the cameras: the
/// `segwatch_stage_seconds_sum{camera="...",stage="..."}` lines.
func stageSeconds(_ metrics: String) -> [String: Double] {
    var seconds: [String: Double] = [:]
    for line in metrics.split(separator: "\n") where line.hasPrefix("segwatch_stage_seconds_sum{") {
        guard let start = line.range(of: "stage=\""), let end = line[start.upperBound...].firstIndex(of: "\""),
              let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
        seconds[String(line[start.upperBound..<end]), default: 0] += value
    }
    return seconds
}

/// What `bench serve` reads of `/api/cameras`.
private struct CameraRecordFigures: Decodable {
    var name: String
    var analyzed: Int
    var dropped: Int
    var latency_p50_ms: Double?
    var latency_p95_ms: Double?
}

/// `bench serve --json`.
public struct ServeBenchResult: Encodable, Sendable {
    public struct Camera: Encodable, Sendable {
        public var name: String
        public var analyzed_fps: Double
        public var drops: Int
        public var latency_p50_ms: Double?
        public var latency_p95_ms: Double?
    }
    public struct Restart: Encodable, Sendable {
        public var camera: String
        public var others_fps_before: [String: Double]
        public var others_fps_down: [String: Double]
        public var others_fps_after: [String: Double]
        public var restarted_camera_fps_after: Double
        public var largest_drop_percent: Double
    }
    public var source: String
    public var threads: Int
    public var warmup_s: Double
    public var seconds: Double
    public var cameras: [Camera] = []
    public var fairness = 0.0
    public var peak_rss_mb = 0.0
    public var peak_rss_mb_one_camera: Double?
    public var metrics_p50_ms = 0.0
    public var metrics_p95_ms = 0.0
    /// Each analysis stage's milliseconds per frame analyzed in the window (all cameras).
    public var stage_ms_per_frame: [String: Double] = [:]
    public var restart: Restart?
}

/// A TOML basic string.
private func tomlString(_ value: String) -> String {
    "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

/// A loopback port nobody listens on now.
private func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard fd >= 0, bound else { throw ServiceError("bench serve: no free loopback port: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The process's peak resident size (VmHWM), in MB.
private func peakResidentMegabytes(_ pid: Int32) -> Double {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
    return (line?.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0) / 1024
}

/// SIGTERM, then SIGKILL after 60 s: the daemon finishes its outputs on SIGTERM.
private func stopProcess(_ process: Process) {
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGTERM)
    let deadline = DispatchTime.now() + 60
    while process.isRunning, DispatchTime.now() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
}

/// SIGKILL: a server cut off at once, as a crash or a network cut would (the RTSP server's
/// GLib loop does not end on SIGTERM).
private func killProcess(_ process: Process) {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
}

/// `rtsp_server.py MEDIA --port PORT`, once it says it is ready.
private func startRTSPServer(script: String, media: String, port: Int) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [script, media, "--port", String(port)]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    do { try process.run() } catch { throw ServiceError("bench serve: cannot start /usr/bin/python3 \(script): \(error)") }
    let fd = out.fileHandleForReading.fileDescriptor
    var text = ""
    let deadline = DispatchTime.now() + 30
    while !text.contains("ready ") {
        guard DispatchTime.now() < deadline else {
            killProcess(process)
            throw ServiceError("bench serve: \(script) did not say it was ready on port \(port) within 30 s")
        }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 200) > 0 else { continue }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else {
            killProcess(process)
            throw ServiceError("bench serve: \(script) ended before it was ready on port \(port) (it needs Debian's python3-gi and GStreamer's RTSP server)")
        }
        text += String(decoding: buffer[..<count], as: UTF8.self)
    }
    return process
}
