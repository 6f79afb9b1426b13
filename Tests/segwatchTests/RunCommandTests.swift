import Foundation
import SegwatchSAM
import SegwatchTestSupport
import Testing

@Suite struct RunCommandTests {
    static let video = Fixtures.root.appendingPathComponent("media/bikes.mp4").path
    static let sam = Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path
    static let clip = Fixtures.root.appendingPathComponent("clip_hf").path
    // Random weights keep masks only at thresholds of 0; three points a side keep runs short.
    static let generator = ["--points-per-side", "3", "--pred-iou-thresh", "0", "--stability-score-thresh", "0",
                            "--tracked-min-iou", "0", "--keyframe-below-iou", "0", "--discovery-grid", "3"]
    static let schema = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../docs/events.schema.json").standardized

    private func arguments(_ out: String, _ extra: [String] = []) -> [String] {
        ["run", Self.video, "--sam", Self.sam, "--clip", Self.clip, "--label", "car", "--label", "person", "--label", "road",
         "--fps", "5", "--threads", "2", "--json-out", out] + Self.generator + extra
    }

    /// The track ids a run's events name.
    private func trackIDs(_ events: [[String: Any]]) -> Set<Int> {
        Set(events.flatMap { event -> [Int] in
            if let track = event["track"] as? Int { return [track] }
            return (event["segments"] as? [[String: Any]] ?? []).map { $0["track"] as! Int }
        })
    }

    /// A run's events as sorted-key JSON without `time` and `event_id`, tracks renumbered by first appearance.
    private func canonical(_ events: [[String: Any]]) throws -> [String] {
        var numbers: [Int: Int] = [:]
        func renumber(_ track: Any?) -> Int? {
            guard let track = track as? Int else { return nil }
            if numbers[track] == nil { numbers[track] = numbers.count + 1 }
            return numbers[track]
        }
        return try events.map { event in
            var event = event
            event["time"] = nil
            event["event_id"] = nil
            if let track = renumber(event["track"]) { event["track"] = track }
            if let segments = event["segments"] as? [[String: Any]] {
                event["segments"] = segments.map { segment in
                    var segment = segment
                    segment["track"] = renumber(segment["track"])
                    return segment
                }
            }
            return String(decoding: try JSONSerialization.data(withJSONObject: event, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    private func isISOTime(_ text: String) -> Bool {
        text.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#, options: .regularExpression) != nil
    }

    private func lines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    // bikes.mp4 is 250 frames at 25 fps: 5 per second analyzes frames 0, 5, ..., 245.
    @Test func fiveFramesASecondOfBikes() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for name in ["a", "b"] {
            let video = name == "a" ? ["--video-out", folder.path("a.mp4")] : []
            let result = try runProcess(segwatch, arguments(folder.path("\(name).jsonl"), video), timeout: 600)
            #expect(result.status == 0, "\(result.errorOutput)")
            #expect(result.errorOutput.contains("250 frames decoded, 50 analyzed"), "\(result.errorOutput)")
        }
        let a = try Data(contentsOf: URL(fileURLWithPath: folder.path("a.jsonl")))
        // Two runs agree in everything but the wall clock, the event ids, and the track ids,
        // which never repeat for a camera: the second run's all come after the first's.
        let runA = try lines(folder.path("a.jsonl")), runB = try lines(folder.path("b.jsonl"))
        #expect(runA.count == runB.count)
        #expect(try canonical(runA) == canonical(runB), "two runs differ")
        let tracksA = trackIDs(runA), tracksB = trackIDs(runB)
        #expect(!tracksA.isEmpty && tracksB.min()! > tracksA.max()!, "\(tracksA.sorted()) then \(tracksB.sorted())")
        let ids = (runA + runB).map { $0["event_id"] as! String }
        #expect(Set(ids).count == ids.count)
        #expect(runA.allSatisfy { ($0["time"] as? String).map(isISOTime) ?? false })

        let schema = try JSONSchema(contentsOf: Self.schema)
        for (n, line) in String(decoding: a, as: UTF8.self).split(separator: "\n").enumerated() {
            let violations = schema.violations(of: Data(line.utf8))
            #expect(violations.isEmpty, "line \(n + 1): \(violations)")
        }
        let events = try lines(folder.path("a.jsonl"))
        let frames = events.filter { $0["type"] as? String == "frame" }
        #expect(frames.map { $0["frame"] as! Int } == Array(stride(from: 0, to: 250, by: 5)))
        let pts = frames.map { $0["pts"] as! Double }
        #expect(zip(pts, pts.dropFirst()).allSatisfy { $0 < $1 })
        // A keyframe first and then at most 10 analyzed frames apart (sooner at a cut or a drop
        // in coverage); the frames between are tracked.
        let keyframes = frames.indices.filter { frames[$0]["keyframe"] as! Bool }
        let gaps = zip(keyframes, keyframes.dropFirst() + [50]).map { $1 - $0 }
        #expect(keyframes.first == 0 && gaps.allSatisfy { $0 <= 10 } && keyframes.count < 25, "keyframes \(keyframes)")

        // The annotated video keeps every source frame, at the source's size and timestamps.
        let probe = try runProcess(segwatch, ["probe", folder.path("a.mp4"), "--count-frames", "--json"], timeout: 60)
        let report = try JSONSerialization.jsonObject(with: Data(probe.output.utf8)) as! [String: Any]
        let stream = (report["streams"] as! [[String: Any]])[0]
        #expect(stream["width"] as? Int == 640 && stream["height"] as? Int == 272 && stream["frames"] as? Int == 250, "\(probe.output)")
        #expect(abs((report["duration"] as? Double ?? 0) - 10) < 0.1, "\(probe.output)")
        var tracked = Set<Int>()
        for frame in frames {
            for segment in frame["segments"] as! [[String: Any]] {
                let rle = segment["rle"] as! [String: Any]
                #expect(rle["size"] as! [Int] == [272, 640])
                let decoded = rleFromString(rle["counts"] as! String, height: 272, width: 640)
                #expect(decoded.map(areaFromRLE) == segment["area"] as? Int)
                tracked.insert(segment["track"] as! Int)
            }
        }
        // Every track seen starts once before it is seen and ends once at the end.
        let trackEvents = events.filter { $0["type"] as? String == "track" }
        let starts = trackEvents.filter { $0["event"] as? String == "start" }.map { $0["track"] as! Int }
        let ends = trackEvents.filter { $0["event"] as? String == "end" }.map { $0["track"] as! Int }
        #expect(!tracked.isEmpty && Set(starts) == tracked && starts.count == tracked.count && Set(ends) == tracked)
    }

    @Test func stopsAfterMaxFramesAndBadInputsAreClear() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let limited = try runProcess(segwatch, arguments(folder.path("c.jsonl"), ["--max-frames", "2", "--stuff", "road"]), timeout: 300)
        #expect(limited.status == 0 && limited.errorOutput.contains("2 analyzed"), "\(limited.errorOutput)")
        let frames = try lines(folder.path("c.jsonl")).filter { $0["type"] as? String == "frame" }
        #expect(frames.count == 2)
        // A second run appends: the first run's lines stay as they were.
        let first = try Data(contentsOf: URL(fileURLWithPath: folder.path("c.jsonl")))
        let again = try runProcess(segwatch, arguments(folder.path("c.jsonl"), ["--max-frames", "1"]), timeout: 300)
        #expect(again.status == 0, "\(again.errorOutput)")
        let both = try Data(contentsOf: URL(fileURLWithPath: folder.path("c.jsonl")))
        #expect(both.count > first.count && both.prefix(first.count) == first)
        #expect(try lines(folder.path("c.jsonl")).count { $0["type"] as? String == "frame" } == 3)
        // A stuff label is reported by its area, never as a tracked segment.
        for frame in frames {
            let segments = frame["segments"] as! [[String: Any]], stuff = frame["stuff"] as! [[String: Any]]
            #expect(!segments.isEmpty || !stuff.isEmpty)
            #expect(segments.allSatisfy { $0["label"] as? String != "road" })
            #expect(stuff.allSatisfy { $0["label"] as? String == "road" && ($0["area"] as! Int) > 0 })
        }

        let badVocab = folder.path("bad.txt")
        try "car\n|\n".write(toFile: badVocab, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["run", Self.video, "--sam", "/nonexistent/sam.pt", "--clip", Self.clip, "--label", "car"], "/nonexistent/sam.pt"),
            (["run", Self.video, "--sam", Self.sam, "--clip", Self.clip, "--vocab", badVocab], "bad.txt:2"),
            (["run", "/nonexistent/video.mp4", "--sam", Self.sam, "--clip", Self.clip, "--label", "car"], "/nonexistent/video.mp4"),
            (["run", Self.video, "--sam", Self.sam, "--clip", Self.clip, "--label", "car", "--stuff", "sky"], "--stuff 'sky'"),
            (["run", Self.video, "--sam", Self.sam, "--clip", Self.clip, "--label", "car", "--fps", "-1"], "--fps"),
            (["run", Self.video, "--sam", Self.sam, "--clip", Self.clip, "--label", "car", "--events-socket", badVocab], "bad.txt: exists and is not a socket"),
            (["run", Self.video, "--sam", Self.sam, "--clip", Self.clip, "--label", "car", "--video-out", "/nonexistent/dir/v.mp4"], "/nonexistent/dir/v.mp4"),
        ]
        for (arguments, named) in cases {
            let result = try runProcess(segwatch, arguments, timeout: 120)
            #expect(result.status != 0 && result.errorOutput.contains(named), "\(arguments): \(result.errorOutput)")
            #expect(!result.errorOutput.contains("Fatal error"), "\(arguments): \(result.errorOutput)")
        }
    }

    // SIGTERM mid-file, twice: the frame in flight is finished, the tracks are ended, the JSON
    // lines are whole and the video is playable, and the exit status is 0.
    @Test func sigtermLeavesValidLinesAndAPlayableVideo() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let (out, video) = (folder.path("t.jsonl"), folder.path("t.mp4"))
        let run = try BackgroundProcess(segwatch, arguments(out, ["--video-out", video, "--fps", "0"]),
                                        stdout: folder.path("stdout"), stderr: folder.path("stderr"))
        let deadline = Date().addingTimeInterval(240)
        while Date() < deadline, run.process.isRunning,
              ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").components(separatedBy: "\"type\":\"frame\"").count < 3 {
            Thread.sleep(forTimeInterval: 0.1)
        }
        // Twice, as `timeout` and many supervisors do: the second must not abort the finish.
        run.signal(SIGTERM)
        Thread.sleep(forTimeInterval: 0.05)
        run.signal(SIGTERM)
        #expect(run.wait(timeout: 120) == 0, "\(run.errorOutput)")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.hasSuffix("\n"))
        let schema = try JSONSchema(contentsOf: Self.schema)
        let events = text.split(separator: "\n")
        for line in events { #expect(schema.violations(of: Data(line.utf8)).isEmpty, "\(line.prefix(200))") }
        let frames = events.filter { $0.contains("\"type\":\"frame\"") }.count
        #expect(frames >= 2 && frames < 250, "\(frames) frames")
        let starts = events.filter { $0.contains("\"event\":\"start\"") }.count, ends = events.filter { $0.contains("\"event\":\"end\"") }.count
        #expect(starts > 0 && starts == ends)
        let probe = try runProcess(segwatch, ["probe", video, "--count-frames", "--json"], timeout: 60)
        #expect(probe.status == 0, "\(probe.errorOutput)")
        let report = try JSONSerialization.jsonObject(with: Data(probe.output.utf8)) as! [String: Any]
        let written = (report["streams"] as! [[String: Any]])[0]["frames"] as? Int ?? 0
        #expect(written >= frames && written < 250, "\(written) video frames for \(frames) analyzed")
    }

    // SIGKILL mid-run, then a restart: every line written is whole, every closed video segment
    // is playable, the dead run's socket is replaced, and the restart appends to the JSON lines
    // and adds segments instead of overwriting them.
    @Test func aKilledRunKeepsWhatItWroteAndRestartsCleanly() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let (out, socket) = (folder.path("k.jsonl"), folder.path("e.sock"))
        let extra = ["--video-out", folder.path("v.mp4"), "--video-segment-minutes", "0.02", "--events-socket", socket,
                     "--state-dir", folder.path("state"), "--fps", "2"]
        func segments() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: folder.path(""))) ?? []).filter { $0.hasPrefix("v-") }.sorted()
        }
        let run = try BackgroundProcess(segwatch, arguments(out, extra), stdout: folder.path("stdout"), stderr: folder.path("stderr"))
        #expect(eventually(240, every: 0.1) { segments().count >= 3 }, "\(segments()) \(run.errorOutput)")
        run.signal(SIGKILL)
        _ = run.wait(timeout: 30)
        let written = try Data(contentsOf: URL(fileURLWithPath: out))
        let schema = try JSONSchema(contentsOf: Self.schema)
        for line in String(decoding: written, as: UTF8.self).split(separator: "\n") {
            #expect(schema.violations(of: Data(line.utf8)).isEmpty, "\(line.prefix(200))")
        }
        let killed = segments()
        for name in killed.dropLast() {
            let probe = try runProcess(segwatch, ["probe", folder.path(name), "--count-frames", "--json"], timeout: 60)
            #expect(probe.status == 0 && probe.output.contains("\"frames\""), "\(name): \(probe.errorOutput)")
        }
        var info = stat()
        #expect(lstat(socket, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK, "the killed run's socket is left behind")
        let sizes = try killed.dropLast().map { try FileManager.default.attributesOfItem(atPath: folder.path($0))[.size] as? Int }

        let again = try runProcess(segwatch, arguments(out, extra + ["--max-frames", "2"]), timeout: 300)
        #expect(again.status == 0, "\(again.errorOutput)")
        let after = try Data(contentsOf: URL(fileURLWithPath: out))
        #expect(after.count > written.count && after.prefix(written.count) == written)
        #expect(Set(segments()).isSuperset(of: killed) && segments().count > killed.count)
        #expect(try killed.dropLast().map { try FileManager.default.attributesOfItem(atPath: folder.path($0))[.size] as? Int } == sizes)
        #expect(!FileManager.default.fileExists(atPath: socket), "the restart's socket is removed when it ends")
    }

    // A 200x2 video: CLIP's grid is capped (DenseGridTests), so the frame is analyzed like any other.
    @Test func anExtremeAspectRatioIsAnalyzed() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let out = folder.path("thin.jsonl")
        let result = try runProcess(segwatch, ["run", "lavfi:testsrc=size=200x2:rate=5", "--sam", Self.sam, "--clip", Self.clip,
                                               "--label", "car", "--max-frames", "1", "--state-dir", folder.path("state"),
                                               "--json-out", out] + Self.generator, timeout: 120)
        #expect(result.status == 0, "\(result.errorOutput)")
        let frames = try lines(out).filter { $0["type"] as? String == "frame" }
        #expect(frames.count == 1 && frames[0]["width"] as? Int == 200 && frames[0]["height"] as? Int == 2)
    }

    // The validator the run test relies on does reject what the schema forbids.
    @Test func schemaRejectsBrokenEvents() throws {
        let schema = try JSONSchema(contentsOf: Self.schema)
        let good = #"{"type":"track","source":"a","time":"2026-12-06T10:15:02.360Z","event_id":"x-1","event":"start","track":3,"label":"car","pts":1.5,"best_score":0.5}"#
        #expect(schema.violations(of: Data(good.utf8)).isEmpty)
        let broken = [
            #"{"type":"track","source":"a","event":"start","track":3,"label":"car","pts":1.5,"best_score":0.5}"#,
            #"{"type":"track","source":"a","time":"2026-12-06 10:15:02","event_id":"x-1","event":"start","track":3,"label":"car","pts":1.5,"best_score":0.5}"#,
            #"{"type":"track","source":"a","time":"2026-12-06T10:15:02.360Z","event_id":"x-1","event":"begin","track":3,"label":"car","pts":1.5,"best_score":0.5}"#,
            #"{"type":"track","source":"a","time":"2026-12-06T10:15:02.360Z","event_id":"x-1","event":"start","track":0,"label":"car","pts":1.5,"best_score":0.5}"#,
            #"{"type":"frame","source":"a","time":"2026-12-06T10:15:02.360Z","event_id":"x-1","frame":0,"width":2,"height":2,"segments":[],"stuff":[]}"#,
            #"{"type":"frame","source":"a","time":"2026-12-06T10:15:02.360Z","event_id":"x-1","frame":0,"pts":0,"width":2,"height":2,"stuff":[],"segments":[{"track":1}]}"#,
            #"{"type":"source","source":"a","time":"2026-12-06T10:15:02.360Z","event_id":"x-1","state":"asleep"}"#,
        ]
        for line in broken { #expect(!schema.violations(of: Data(line.utf8)).isEmpty, "\(line)") }
    }
}
