import ArgumentParser
import Foundation
import SegwatchService
import SegwatchTensor

/// `segwatch bench live`: one camera, live, end to end: the daemon on a loopback RTSP stream at
/// its own rate, analyzing the newest frame whenever the engine is free.
struct BenchLive: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live",
        abstract: "Run the daemon on one live RTSP camera: analyzed frames a second, drops, and event latency.",
        discussion: """
            Serves --media over loopback RTSP with --rtsp-server at the video's own rate (the \
            fixtures' bikes.mp4: 25 fps), and starts `segwatch serve` (this binary) with one camera \
            on it at fps = 0: the newest frame whenever the engine is free, keyframes included, at \
            the default keyframe interval and grids. From the first analyzed frame it measures \
            --seconds seconds: analyzed_fps (keyframes included), drops (frames decoded and passed \
            over), and the event latency from a frame decoded to its events written, p50 and p95 \
            (over the last 256 analyses: at these rates, every analysis of the window); and \
            stage_ms.STAGE, each analysis stage's milliseconds per analyzed frame over the window \
            (the daemon's segwatch_stage_seconds: sam_encoder, clip_dense, decoder, masks, embed, \
            classify, track), where a frame's time goes.

            The weights are random (the fixtures' MobileSAM, and a synthetic ViT-B/16 unless \
            --clip), which keep no mask at the usual thresholds. As in `bench pipeline`, the \
            generator runs at thresholds 0, a frame keeps 50 segments at most, tracks are \
            re-prompted whatever their IoU and never merged, and keyframes come every 10 analyzed \
            frames (random masks cover too little for the coverage rule).
            """)

    @Option(help: "SAM checkpoint or model name (e.g. the fixtures' mobile_sam.pt).", transform: ModelArgument.sam)
    var sam: String

    @Option(help: "A CLIP model (folder, OpenAI .pt or model name) instead of the synthetic ViT-B/16.", transform: ModelArgument.clip)
    var clip: String?

    @Option(help: "The video served over loopback RTSP (e.g. ../shared/fixtures/media/bikes.mp4).")
    var media: String

    @Option(help: "The loopback RTSP server: ../shared/tools/rtsp_server.py (run by /usr/bin/python3).")
    var rtspServer: String

    @Option(help: "Threads of the daemon's engine.")
    var threads = 2

    @Option(help: "Seconds measured, from the first analyzed frame.")
    var seconds = 120.0

    @Option(help: "The segwatch binary that runs the daemon, to compare builds (default: this one).")
    var daemon: String?

    @Option(help: "A setting of the configuration file to try, as KEY=VALUE: a camera's (e.g. keyframe_slices=32, or labels=[\"person\"] in place of the bench's five labels) or the engine's (e.g. clip_size=272, precision=\"bfloat16\"). Repeatable.",
            transform: configSetting)
    var set: [String] = []

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard seconds >= 3 else { throw ValidationError("--seconds must be at least 3") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1...256") }
    }

    func run() throws {
        try runReporting {
            let model = try BenchCLIPFiles(clip, name: "live")
            defer { model.remove() }
            var bench = ServeBenchmark(sam: sam, clip: model.path, executable: try daemon ?? currentExecutable())
            (bench.cameras, bench.threads, bench.warmup, bench.seconds) = (1, threads, 0, seconds)
            (bench.media, bench.rtspServer) = (media, rtspServer)
            (bench.pointsPerSide, bench.discoveryGrid, bench.liveSettings) = (nil, nil, true)
            bench.settings = set
            let run = try bench.run { text in
                if !json { FileHandle.standardError.write(Data("bench live: \(text)\n".utf8)) }
            }
            let camera = run.cameras[0]
            var result = BenchResult()
            result["analyzed_fps"] = .number(camera.analyzed_fps)
            result["drops"] = .number(Double(camera.drops))
            result["latency_p50_ms"] = camera.latency_p50_ms.map { .number($0) }
            result["latency_p95_ms"] = camera.latency_p95_ms.map { .number($0) }
            result["peak_rss_mb"] = .number(run.peak_rss_mb)
            for (stage, milliseconds) in run.stage_ms_per_frame { result["stage_ms.\(stage)"] = .number(milliseconds) }
            result["seconds"] = .number(seconds)
            result["threads"] = .number(Double(threads))
            result["source"] = .string(run.source)
            result.describeMachine()
            print(json ? try result.json() : result.text())
        }
    }
}

/// `--set KEY=VALUE` as the configuration file's line `KEY = VALUE`.
private func configSetting(_ setting: String) throws -> String {
    let parts = setting.split(separator: "=", maxSplits: 1)
    guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isLetter || $0 == "_" }), !parts[1].contains("\n") else {
        throw ValidationError("--set takes KEY=VALUE, a camera or engine key of the configuration file and its TOML value, not \(setting.debugDescription)")
    }
    return "\(parts[0]) = \(parts[1])"
}
