import Foundation
@testable import SegwatchService
import Testing

@Suite struct ServeBenchmarkTests {
    // Guards `bench live --set`: a key the bench sets itself (its five labels, the engine's
    // threads) is replaced, not repeated (TOML refuses a key defined twice), other keys are
    // added, and the engine's keys go in [engine], the rest in every camera.
    @Test func aSettingReplacesTheBenchsOwn() throws {
        var bench = ServeBenchmark(sam: "sam.pt", clip: "clip", executable: "segwatch")
        bench.settings = [#"labels = ["person"]"#, "keyframe_slices = 32", "clip_size = 272", "threads = 1"]
        let text = bench.configText(names: ["one", "two"], inputs: ["rtsp://127.0.0.1:8554/one", "rtsp://127.0.0.1:8554/two"], port: 8080,
                                    folder: URL(fileURLWithPath: "/tmp"))
        let config = try ServiceConfig.parse(text, file: "bench.toml")
        #expect(config.cameras.map(\.labels) == [["person"], ["person"]])
        #expect(config.cameras.map(\.analyzer.keyframeSlices) == [32, 32])
        #expect(config.engine.clipSize == 272 && config.engine.threads == 1)
    }

    // Guards `bench live`'s stage_ms: each stage's seconds summed over the cameras, from the
    // `_sum` lines only (not the buckets or counts, nor another metric with a stage label).
    @Test func stageSecondsAddUpTheCamerasSums() {
        let metrics = """
            # TYPE segwatch_stage_seconds histogram
            segwatch_stage_seconds_bucket{camera="a",stage="decoder",le="0.5"} 3
            segwatch_stage_seconds_sum{camera="a",stage="decoder"} 1.5
            segwatch_stage_seconds_count{camera="a",stage="decoder"} 4
            segwatch_stage_seconds_sum{camera="b",stage="decoder"} 0.25
            segwatch_stage_seconds_sum{camera="a",stage="clip_dense"} 2
            segwatch_other_seconds_sum{camera="a",stage="decoder"} 100
            """
        #expect(stageSeconds(metrics) == ["decoder": 1.75, "clip_dense": 2])
    }
}
