import Foundation
import SegwatchTestSupport
import Testing

/// Memory over a long run: `run` on a lavfi source, every frame analyzed (the tiny SAM fixture
/// keeps a frame near a quarter second), its resident size sampled as the frames come out.
/// Steady state reuses its buffers, so after the first frames RSS must not grow.
@Suite struct RunMemoryTests {
    static func rss(_ pid: Int32) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Double(line.split(separator: " ")[1]) else { return nil }
        return kilobytes / 1024
    }

    /// Least-squares slope of `ys` against `xs`.
    static func slope(_ xs: [Double], _ ys: [Double]) -> Double {
        let (mx, my) = (xs.reduce(0, +) / Double(xs.count), ys.reduce(0, +) / Double(ys.count))
        let covariance = zip(xs, ys).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
        return covariance / max(xs.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }, 1e-9)
    }

    // Guards flat memory: over the second half of 400 analyzed frames (tracks re-prompted each
    // frame, keyframes often), the resident size's floor (its least in each window of 25
    // frames) grows by less than 0.05 MB a frame, the size of a leaked 160x120 frame, and by
    // less than 16 MB in all. Floors, not every sample: the encoder of the next frame and the
    // decoder's batches run at once, and where their largest tensors overlap an extra buffer is
    // needed for a frame or two (transient peaks of up to 32 MB on a loaded machine); the pool
    // gives it back at a keyframe. A leak, or a cache that keeps what a peak took, raises the
    // floor.
    @Test func residentSizeStaysFlat() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let fixtures = Fixtures.root
        let frames = 400
        let process = try BackgroundProcess(segwatch, [
            "run", "lavfi:testsrc=size=160x120:rate=25", "--fps", "0", "--max-frames", "\(frames)",
            "--sam", fixtures.appendingPathComponent("sam_vit/sam_vit_tiny.pth").path,
            "--clip", fixtures.appendingPathComponent("clip_hf").path, "--label", "car", "--label", "person",
            "--threads", "2", "--points-per-side", "3", "--pred-iou-thresh", "0", "--stability-score-thresh", "0",
            "--discovery-grid", "0", "--keyframe-every", "25", "--keyframe-below-iou", "0", "--tracked-min-iou", "0",
            "--clip-size", "224", "--cache", folder.path("cache"), "--json-out", folder.path("events.jsonl"),
        ], stdout: folder.path("out"), stderr: folder.path("err"))
        var samples: [(frames: Double, megabytes: Double)] = []
        let pid = process.process.processIdentifier
        while process.process.isRunning {
            let done = (try? String(contentsOfFile: folder.path("events.jsonl"), encoding: .utf8))?
                .components(separatedBy: "\"type\":\"frame\"").count ?? 1
            if let megabytes = Self.rss(pid) { samples.append((Double(done - 1), megabytes)) }
            Thread.sleep(forTimeInterval: 0.25)
            if samples.count > 4 * 1800 { process.signal(SIGKILL) }  // 30 minutes: something hangs
        }
        #expect(process.wait(timeout: 30) == 0, "\(process.errorOutput)")
        let second = samples.filter { $0.frames >= Double(frames / 2) && $0.frames < Double(frames) }
        try #require(second.count >= 50, "only \(second.count) samples in the second half")
        let windows = stride(from: frames / 2, to: frames, by: 25).map { start in
            second.filter { $0.frames >= Double(start) && $0.frames < Double(start + 25) }
        }
        try #require(windows.allSatisfy { !$0.isEmpty }, "a window of 25 frames without a sample")
        let floors = windows.map { $0.map(\.megabytes).min()! }
        let growth = Self.slope(windows.map { $0.map(\.frames).reduce(0, +) / Double($0.count) }, floors)
        let rise = floors.max()! - floors[0]
        #expect(growth < 0.05, "the resident size's floor grows \(growth) MB per frame over the second half: \(floors)")
        #expect(rise < 16, "the resident size's floor rose \(rise) MB over the second half: \(floors)")
        let tracked = try String(contentsOfFile: folder.path("events.jsonl"), encoding: .utf8).components(separatedBy: "\"track\":").count - 1
        #expect(tracked > frames, "the run tracked too little to exercise the tracked frames (\(tracked) segment-track links)")
        print("RunMemoryTests: \(samples.count) samples, RSS \(samples.first!.megabytes) -> \(samples.last!.megabytes) MB, "
              + "floors \(floors.map { Int($0.rounded()) }) MB, slope \(growth) MB/frame, rise \(rise) MB, peak \(second.map(\.megabytes).max()!) MB")
    }
}
