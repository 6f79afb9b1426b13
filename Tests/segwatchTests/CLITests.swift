import Foundation
import SegwatchTestSupport
import Testing

/// The `segwatch` binary built beside this test bundle, or `SEGWATCH_BIN`.
let segwatch: String = {
    if let override = ProcessInfo.processInfo.environment["SEGWATCH_BIN"] { return override }
    let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var folder = runner.deletingLastPathComponent()
    // The runner may sit inside an .xctest bundle folder.
    while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("segwatch").path), folder.path != "/" {
        folder.deleteLastPathComponent()
    }
    return folder.appendingPathComponent("segwatch").path
}()

@Suite struct ProbeCommandTests {
    // Guards `probe --json --count-frames`: the keys the issue names, and exact values.
    @Test(arguments: [("bikes.mp4", 640, 272, 250, 25.0), ("bigbuckbunny.mp4", 1280, 720, 132, 25.0),
                      ("carphone.mp4", 176, 144, 120, 29.97)])
    func jsonReportsEveryVideoKey(file: String, width: Int, height: Int, frames: Int, fps: Double) throws {
        let result = try runProcess(segwatch, ["probe", Fixtures.media(file), "--json", "--count-frames"], timeout: 60)
        #expect(result.status == 0, "\(result.errorOutput)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let streams = try #require(object["streams"] as? [[String: Any]])
        let video = try #require(streams.first { $0["type"] as? String == "video" })
        #expect(video["codec"] as? String == "h264")
        #expect(video["width"] as? Int == width && video["height"] as? Int == height)
        #expect(video["frames"] as? Int == frames)
        #expect(abs((video["fps"] as? Double ?? 0) - fps) < 0.01)
        let duration = try #require(video["duration"] as? Double)
        #expect(abs(duration - Double(frames) / fps) < 0.1)
    }

    @Test func framesAreOnlyReportedWhenCounted() throws {
        let result = try runProcess(segwatch, ["probe", Fixtures.media("bikes.mp4"), "--json"], timeout: 60)
        #expect(result.status == 0)
        #expect(!result.output.contains("\"frames\""))
    }

    // Guards the error path users see: one line naming the input, exit status 1, no crash.
    @Test(arguments: ["/nonexistent/clip.mp4", "/dev/video93"])
    func badInputIsOneClearLine(input: String) throws {
        let result = try runProcess(segwatch, ["probe", input], timeout: 20)
        #expect(result.status == 1)
        let lines = result.errorOutput.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("segwatch: ") && lines[0].contains(input))
    }

    @Test func everyCommandHasHelpAndVersion() throws {
        for command in [[], ["probe"], ["record"], ["bench"], ["bench", "decode"]] {
            let help = try runProcess(segwatch, command + ["--help"], timeout: 20)
            #expect(help.status == 0 && help.output.contains("USAGE:"), "\(command) --help")
            let version = try runProcess(segwatch, command + ["--version"], timeout: 20)
            #expect(version.status == 0 && version.output.first?.isNumber == true, "\(command) --version")
        }
    }
}

@Suite struct RecordCommandTests {
    // Guards finalization on SIGINT: the MP4 must be playable and hold every frame reported.
    @Test(arguments: [SIGINT, SIGTERM])
    func interruptedRecordingIsPlayable(signal: Int32) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let output = folder.path("interrupted.mp4")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: segwatch)
        process.arguments = ["record", "lavfi:testsrc=size=320x240:rate=25", "-o", output, "--json"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until frames are being written, then interrupt mid-file.
        let start = Date()
        while (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0 < 20_000,
              Date().timeIntervalSince(start) < 30 {
            Thread.sleep(forTimeInterval: 0.1)
        }
        kill(process.processIdentifier, signal)
        let stopped = Date()
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(stopped) < 10)
        #expect(process.terminationStatus == 0)
        let summary = try #require(try JSONSerialization.jsonObject(with: out.fileHandleForReading.readDataToEndOfFile()) as? [String: Any])
        let written = try #require(summary["frames"] as? Int)
        #expect(written > 0)
        let probed = try ffprobeVideo(output)
        #expect(probed.frames == written && probed.width == 320 && probed.height == 240)
    }

    @Test func recordsAFixedNumberOfFrames() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let output = folder.path("clip.mkv")
        let result = try runProcess(segwatch, ["record", Fixtures.media("bikes.mp4"), "-o", output,
                                               "--frames", "40", "--size", "320x136", "--json"], timeout: 60)
        #expect(result.status == 0, "\(result.errorOutput)")
        let probed = try ffprobeVideo(output)
        #expect(probed.frames == 40 && probed.width == 320 && probed.height == 136)
    }
}

@Suite struct BenchCommandTests {
    // Guards the bench contract: one JSON object with `fps`, and `*_ms` medians with samples.
    @Test func decodeBenchPrintsFPSAsJSON() throws {
        let result = try runProcess(segwatch, ["bench", "decode", Fixtures.media("carphone.mp4"), "--json",
                                               "--runs", "1", "--warmup", "0"], timeout: 120)
        #expect(result.status == 0, "\(result.errorOutput)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect(object["frames"] as? Int == 120)
        #expect((object["fps"] as? Double ?? 0) > 0)
        #expect(object["decode_ms"] is Double && object["ffmpeg_fps"] is Double)
        #expect((object["samples"] as? [String: Any])?["decode_ms"] is [Any])
    }

    // Guards the gemm benchmark's contract: both sides timed in one run, same size.
    @Test func gemmBenchComparesWithOpenBLAS() throws {
        let result = try runProcess(segwatch, ["bench", "gemm", "--size", "96", "--json", "--runs", "3"], timeout: 60)
        #expect(result.status == 0, "\(result.errorOutput)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect(object["size"] as? Int == 96 && object["threads"] as? Int == 2)
        #expect((object["segwatch_gflops"] as? Double ?? 0) > 0 && (object["openblas_gflops"] as? Double ?? 0) > 0)
        #expect(object["overhead_percent"] is Double)
        #expect(((object["samples"] as? [String: Any])?["openblas_ms"] as? [Any])?.count == 3)
        let bad = try runProcess(segwatch, ["bench", "gemm", "--size", "0"], timeout: 30)
        #expect(bad.status != 0 && bad.errorOutput.contains("--size"))
    }
}
