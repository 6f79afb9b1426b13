import ArgumentParser
import Dispatch
import Foundation
import SegwatchService

/// `segwatch bench serve`: the daemon itself, as a child process, with one camera and then with
/// `--cameras N`; each camera's rate, drops and event latency read from `/api/cameras`.
struct BenchServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the daemon on N cameras: each camera's analysis rate, drops and event latency, the fairness between them, peak memory, and how fast /metrics answers.",
        discussion: """
            Starts `segwatch serve` (this binary) on a configuration it writes: the given models \
            on --threads threads, and --cameras cameras analyzing as often as the engine allows \
            (fps = 0), each reading a 25 fps lavfi test pattern of --size, or with --media the \
            same video served over loopback RTSP by --rtsp-server (one server per camera). \
            After --warmup seconds it measures --seconds seconds: each camera's analyzed frames \
            a second, dropped frames, and the event latency (frame taken to events written) \
            over its last 256 analyses; fairness is the largest rate over the smallest. It \
            asks /metrics twice a second meanwhile (metrics_p50_ms, metrics_p95_ms). peak_rss_mb \
            is the daemon's peak resident size; peak_rss_mb_one_camera the same from a first \
            run with one camera, as long.

            --restart-one kills the first camera's RTSP server for the middle third of the \
            measurement and starts it again: `restart` gives the other cameras' rates before, \
            while it is down and after, and the largest fall in percent (they may rise: the \
            engine's share of the dead camera goes to them); fairness is then measured over \
            the first third.

            The fixtures' random weights keep masks only at thresholds 0, so the generator \
            runs at thresholds 0 with --points-per-side points, and tracks are re-prompted \
            whatever their IoU, as in the tests.
            """)

    @Option(help: "Cameras in the measured run.")
    var cameras = 4

    @Option(help: "SAM checkpoint or model name (e.g. the fixtures' mobile_sam.pt).", transform: ModelArgument.sam)
    var sam: String

    @Option(help: "CLIP model: folder, OpenAI .pt or model name.", transform: ModelArgument.clip)
    var clip: String

    @Option(help: "Threads of the daemon's engine.")
    var threads = 2

    @Option(help: "Seconds each daemon runs before it is measured.")
    var warmup = 20.0

    @Option(help: "Seconds measured.")
    var seconds = 60.0

    @Option(help: "Size of the lavfi test patterns, as WIDTHxHEIGHT.")
    var size = "320x240"

    @Option(help: "A video served to every camera over loopback RTSP instead of lavfi (needs --rtsp-server).")
    var media: String?

    @Option(help: "The loopback RTSP server: ../shared/tools/rtsp_server.py (run by /usr/bin/python3).")
    var rtspServer: String?

    @Flag(help: "Kill the first camera's RTSP server for the middle third of the measurement, then start it again.")
    var restartOne = false

    @Option(help: "The generator's points per side.")
    var pointsPerSide = 3

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard (1...64).contains(cameras) else { throw ValidationError("--cameras must be 1...64, not \(cameras)") }
        guard warmup >= 0, seconds >= 3 else { throw ValidationError("--warmup must be at least 0 and --seconds at least 3") }
        guard (1...64).contains(pointsPerSide) else { throw ValidationError("--points-per-side must be 1...64") }
        let parts = size.split(separator: "x")
        guard parts.count == 2, let width = Int(parts[0]), let height = Int(parts[1]), width >= 16, height >= 16 else {
            throw ValidationError("--size must be WIDTHxHEIGHT, e.g. 320x240, not '\(size)'")
        }
        if media != nil, rtspServer == nil { throw ValidationError("--media needs --rtsp-server (../shared/tools/rtsp_server.py)") }
        if restartOne, media == nil { throw ValidationError("--restart-one needs RTSP cameras: give --media and --rtsp-server") }
    }

    func run() throws {
        try runReporting {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-bench-serve-\(getpid())")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            var result = ServeBenchResult(source: media.map { "rtsp:" + $0 } ?? "lavfi:testsrc \(size)", threads: threads,
                                          warmup_s: warmup, seconds: seconds)
            if cameras > 1 {
                progress("one camera: \(Int(warmup + seconds)) s")
                let one = try measure(cameras: 1, folder: folder.appendingPathComponent("one"), restart: false)
                result.peak_rss_mb_one_camera = one.peakRSS
            }
            progress("\(cameras) cameras: \(Int(warmup + seconds)) s")
            let run = try measure(cameras: cameras, folder: folder.appendingPathComponent("all"), restart: restartOne)
            result.cameras = run.cameras
            result.peak_rss_mb = run.peakRSS
            result.peak_rss_mb_one_camera = result.peak_rss_mb_one_camera ?? run.peakRSS
            result.metrics_p50_ms = percentile(run.metricsMs, 0.5)
            result.metrics_p95_ms = percentile(run.metricsMs, 0.95)
            let rates = run.cameras.map(\.analyzed_fps)
            result.fairness = (rates.max() ?? 0) / max(rates.min() ?? 0, 1e-9)
            result.restart = run.restart
            if json {
                print(try jsonString(result))
            } else {
                for camera in result.cameras {
                    print("\(camera.name): \(String(format: "%.2f", camera.analyzed_fps)) analyzed fps, \(camera.drops) dropped, "
                          + "event latency p50 \(format(camera.latency_p50_ms)) ms, p95 \(format(camera.latency_p95_ms)) ms")
                }
                print(String(format: "fairness %.3f; peak RSS %.0f MB (one camera %.0f MB); /metrics p95 %.2f ms",
                             result.fairness, result.peak_rss_mb, result.peak_rss_mb_one_camera ?? 0, result.metrics_p95_ms))
                if let restart = result.restart {
                    print(String(format: "restart of %@: the others' rate fell by at most %.1f %%", restart.camera, restart.largest_drop_percent))
                }
            }
        }
    }

    private func format(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }

    private func progress(_ text: String) {
        if !json { FileHandle.standardError.write(Data("bench serve: \(text)\n".utf8)) }
    }

    /// What one daemon did over the measured window.
    private struct Measured {
        var cameras: [ServeBenchResult.Camera]
        var peakRSS: Double
        var metricsMs: [Double]
        var restart: ServeBenchResult.Restart?
    }

    private func measure(cameras count: Int, folder: URL, restart: Bool) throws -> Measured {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let names = (1...count).map { "camera\($0)" }
        var servers: [Int: Process] = [:]
        defer { for server in servers.values { killProcess(server) } }
        var inputs: [String] = []
        for index in names.indices {
            if let media, let rtspServer {
                let port = try freeLoopbackPort()
                servers[index] = try startRTSPServer(script: rtspServer, media: media, port: port)
                inputs.append("rtsp://127.0.0.1:\(port)/stream")
            } else {
                // Different patterns, so that the cameras' segments differ.
                inputs.append("lavfi:\(index % 2 == 0 ? "testsrc" : "testsrc2")=size=\(size):rate=25")
            }
        }
        let port = try freeLoopbackPort()
        let config = folder.appendingPathComponent("segwatch.toml").path
        try configText(names: names, inputs: inputs, port: port, folder: folder).write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: try currentExecutable())
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
        let windowStart = DispatchTime.now()
        for (index, cut) in cuts.enumerated() {
            while elapsed(since: windowStart) < cut {
                guard daemon.isRunning else { throw failure("the daemon stopped") }
                let asked = DispatchTime.now()
                let metrics = try httpRequest(host: "127.0.0.1", port: port, path: "/metrics")
                guard metrics.status == 200 else { throw failure("/metrics answered \(metrics.status)") }
                metricsMs.append(elapsed(since: asked) * 1000)
                Thread.sleep(forTimeInterval: max(0, min(0.5, cut - elapsed(since: windowStart))))
            }
            snapshots.append((.now(), try statuses(port: port)))
            if restart, let first = servers[0], let media, let rtspServer {
                if index == 1 {
                    progress("camera1's RTSP server killed")
                    killProcess(first)
                } else if index == 2 {
                    progress("camera1's RTSP server started again")
                    let port = Int(inputs[0].split(separator: ":").last!.split(separator: "/").first!)!
                    servers[0] = try startRTSPServer(script: rtspServer, media: media, port: port)
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
        return Measured(cameras: cameras, peakRSS: peak, metricsMs: metricsMs, restart: restartFigures)
    }

    private func configText(names: [String], inputs: [String], port: Int, folder: URL) -> String {
        var text = """
            [engine]
            sam = \(tomlString(sam))
            clip = \(tomlString(clip))
            threads = \(threads)
            state_dir = \(tomlString(folder.appendingPathComponent("state").path))
            cache_dir = \(tomlString(folder.appendingPathComponent("cache").path))

            [engine.generator]
            points_per_side = \(pointsPerSide)
            pred_iou_thresh = 0
            stability_score_thresh = 0

            [http]
            listen = "127.0.0.1:\(port)"

            """
        for (name, input) in zip(names, inputs) {
            text += """

                [[camera]]
                name = "\(name)"
                input = \(tomlString(input))
                fps = 0
                labels = ["car", "person", "bicycle", "tree", "road"]
                json_out = \(tomlString(folder.appendingPathComponent("\(name).jsonl").path))
                discovery_grid = 3
                tracked_min_iou = 0
                keyframe_below_iou = 0

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

/// What `bench serve` reads of `/api/cameras`.
private struct CameraRecordFigures: Decodable {
    var name: String
    var analyzed: Int
    var dropped: Int
    var latency_p50_ms: Double?
    var latency_p95_ms: Double?
}

/// `bench serve --json`.
private struct ServeBenchResult: Encodable {
    struct Camera: Encodable {
        var name: String
        var analyzed_fps: Double
        var drops: Int
        var latency_p50_ms: Double?
        var latency_p95_ms: Double?
    }
    struct Restart: Encodable {
        var camera: String
        var others_fps_before: [String: Double]
        var others_fps_down: [String: Double]
        var others_fps_after: [String: Double]
        var restarted_camera_fps_after: Double
        var largest_drop_percent: Double
    }
    var source: String
    var threads: Int
    var warmup_s: Double
    var seconds: Double
    var cameras: [Camera] = []
    var fairness = 0.0
    var peak_rss_mb = 0.0
    var peak_rss_mb_one_camera: Double?
    var metrics_p50_ms = 0.0
    var metrics_p95_ms = 0.0
    var restart: Restart?
}

private func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
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

/// This binary, for the child daemon.
private func currentExecutable() throws -> String {
    guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
        throw ServiceError("bench serve: cannot find its own executable (/proc/self/exe)")
    }
    return path
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
