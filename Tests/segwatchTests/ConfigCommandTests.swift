import Foundation
import SegwatchTestSupport
import Testing

/// `segwatch config check`, as an operator runs it before (re)starting the service.
@Suite struct ConfigCommandTests {
    static let example = Fixtures.packageRoot.appendingPathComponent("systemd/segwatch.toml").path

    @Test func theExampleChecksOut() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["FRONT_USER"] = "viewer"
        environment["FRONT_PASSWORD"] = "s3cret"
        let result = try runProcess(segwatch, ["config", "check", Self.example], timeout: 60, environment: environment)
        #expect(result.status == 0, "\(result.errorOutput)")
        #expect(result.output.contains("ok: 2 cameras") && result.output.contains("front rtsp://***@192.0.2.10"), "\(result.output)")
        #expect(!result.output.contains("s3cret") && !result.errorOutput.contains("s3cret"))
    }

    @Test func mistakesAreOneLineWithFileAndLine() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let sam = Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path
        let clip = Fixtures.root.appendingPathComponent("clip_hf").path
        let good = "[engine]\nsam = \"\(sam)\"\nclip = \"\(clip)\"\n\n[[camera]]\nname = \"a\"\ninput = \"a.mp4\"\nlabels = [\"car\"]\n"
        let cases: [(String, String)] = [
            (good + "fps = true\n", "c.toml:9: camera[1].fps: expected"),
            (good.replacingOccurrences(of: "sam = \"\(sam)\"", with: "sam = \"mobile_samm\""), "'mobile_samm' is neither a file nor a model name"),
            (good.replacingOccurrences(of: "labels = [\"car\"]", with: "labels = [\"car|\"]"), "camera a: "),
            (good + "vocab = \"/nonexistent/words.txt\"\n", "/nonexistent/words.txt"),
        ]
        for (text, needle) in cases {
            try text.write(toFile: folder.path("c.toml"), atomically: true, encoding: .utf8)
            let result = try runProcess(segwatch, ["config", "check", folder.path("c.toml")], timeout: 60)
            let lines = result.errorOutput.split(separator: "\n")
            #expect(result.status == 1 && lines.count == 1 && lines[0].contains(needle), "\(needle): \(result.errorOutput)")
        }
        try good.write(toFile: folder.path("c.toml"), atomically: true, encoding: .utf8)
        let ok = try runProcess(segwatch, ["config", "check", folder.path("c.toml")], timeout: 60)
        #expect(ok.status == 0 && ok.output.contains("ok: 1 camera;"), "\(ok.output) \(ok.errorOutput)")
    }
}
