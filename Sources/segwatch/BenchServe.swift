import ArgumentParser
import Dispatch
import Foundation
import SegwatchService

/// `segwatch bench serve`: the options and the figures of `ServeBenchmark`.
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
            runs at thresholds 0 with --points-per-side points (and the discovery grid with \
            --discovery-grid), and tracks are re-prompted whatever their IoU, as in the tests.
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

    @Flag(help: "Keep every camera's tracks in a segment store (a SQLite file), to measure its cost against a run without.")
    var store = false

    @Option(help: ArgumentHelp("With --store: this store instead of a SQLite file (a PostgreSQL database the bench may fill).", valueName: "url"))
    var storeUrl: String?

    @Option(help: "The generator's points per side.")
    var pointsPerSide = 3

    @Option(help: "Points per side of the grid that looks for new objects between keyframes.")
    var discoveryGrid = 3

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard (1...64).contains(cameras) else { throw ValidationError("--cameras must be 1...64, not \(cameras)") }
        guard warmup >= 0, seconds >= 3 else { throw ValidationError("--warmup must be at least 0 and --seconds at least 3") }
        guard (1...64).contains(pointsPerSide), (1...64).contains(discoveryGrid) else {
            throw ValidationError("--points-per-side and --discovery-grid must be 1...64")
        }
        let parts = size.split(separator: "x")
        guard parts.count == 2, let width = Int(parts[0]), let height = Int(parts[1]), width >= 16, height >= 16 else {
            throw ValidationError("--size must be WIDTHxHEIGHT, e.g. 320x240, not '\(size)'")
        }
        if media != nil, rtspServer == nil { throw ValidationError("--media needs --rtsp-server (../shared/tools/rtsp_server.py)") }
        if restartOne, media == nil { throw ValidationError("--restart-one needs RTSP cameras: give --media and --rtsp-server") }
    }

    func run() throws {
        try runReporting {
            var bench = ServeBenchmark(sam: sam, clip: clip, executable: try currentExecutable())
            (bench.cameras, bench.threads, bench.warmup, bench.seconds, bench.size) = (cameras, threads, warmup, seconds, size)
            (bench.media, bench.rtspServer, bench.restartOne) = (media, rtspServer, restartOne)
            (bench.pointsPerSide, bench.discoveryGrid, bench.store, bench.storeURL) = (pointsPerSide, discoveryGrid, store || storeUrl != nil, storeUrl)
            let result = try bench.run { text in
                if !json { FileHandle.standardError.write(Data("bench serve: \(text)\n".utf8)) }
            }
            if json { return print(try jsonString(result)) }
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

    private func format(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }
}

/// This binary, for the child daemon.
func currentExecutable() throws -> String {
    guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
        throw ServiceError("bench serve: cannot find its own executable (/proc/self/exe)")
    }
    return path
}
