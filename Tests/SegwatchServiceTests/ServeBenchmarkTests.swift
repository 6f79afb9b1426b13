import Foundation
@testable import SegwatchService
import Testing

@Suite struct ServeBenchmarkTests {
    // Guards `bench live --set`: a camera key the bench sets itself (its five labels) is
    // replaced, not repeated (TOML refuses a key defined twice), and other keys are added.
    @Test func aSettingReplacesTheBenchsOwn() throws {
        var bench = ServeBenchmark(sam: "sam.pt", clip: "clip", executable: "segwatch")
        bench.cameraSettings = [#"labels = ["person"]"#, "keyframe_slices = 32"]
        let text = bench.configText(names: ["one"], inputs: ["rtsp://127.0.0.1:8554/one"], port: 8080,
                                    folder: URL(fileURLWithPath: "/tmp"))
        let config = try ServiceConfig.parse(text, file: "bench.toml")
        #expect(config.cameras.map(\.labels) == [["person"]])
        #expect(config.cameras.map(\.analyzer.keyframeSlices) == [32])
    }
}
