import Foundation
import SegwatchTestSupport
import Testing

/// `segwatch run` on a live RTSP source that goes away mid-run and comes back.
@Suite struct LiveRunTests {
    @Test func sourceEventsShowTheReconnectAndFramesResume() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let port = freePort()
        var server: RTSPServer? = try RTSPServer(file: Fixtures.media("bikes.mp4"), port: port)
        defer { server?.stop() }
        let out = folder.path("live.jsonl")
        let run = try BackgroundProcess(segwatch, ["run", "rtsp://127.0.0.1:\(port)/stream", "--source-name", "cam1",
                                                   "--sam", RunCommandTests.sam, "--clip", RunCommandTests.clip, "--label", "car",
                                                   "--fps", "0", "--threads", "2", "--json-out", out] + RunCommandTests.generator,
                                        stdout: folder.path("stdout"), stderr: folder.path("stderr"))
        defer { run.signal(SIGKILL) }
        func frames() -> Int { jsonLines(out).count { $0["type"] as? String == "frame" } }
        func states() -> [String] { jsonLines(out).filter { $0["type"] as? String == "source" }.map { $0["state"] as! String } }

        #expect(eventually(240, every: 0.1) { frames() >= 2 }, "\(run.errorOutput)")
        server?.stop()
        #expect(eventually(60, every: 0.1) { states().contains("reconnecting") }, "\(states())")
        let before = frames()
        server = try RTSPServer(file: Fixtures.media("bikes.mp4"), port: port)
        #expect(eventually(240, every: 0.1) { states().count { $0 == "connected" } >= 2 && frames() >= before + 2 }, "\(states()) \(run.errorOutput)")
        run.signal(SIGTERM)
        #expect(run.wait(timeout: 60) == 0, "\(run.errorOutput)")

        let all = jsonLines(out)
        let schema = try JSONSchema(contentsOf: RunCommandTests.schema)
        let text = try String(contentsOfFile: out, encoding: .utf8)
        for line in text.split(separator: "\n") { #expect(schema.violations(of: Data(line.utf8)).isEmpty, "\(line.prefix(200))") }
        #expect(all.allSatisfy { $0["source"] as? String == "cam1" })
        // Time and frame numbers keep rising across the reconnection.
        let frameEvents = all.filter { $0["type"] as? String == "frame" }
        let pts = frameEvents.map { $0["pts"] as! Double }, numbers = frameEvents.map { $0["frame"] as! Int }
        #expect(zip(pts, pts.dropFirst()).allSatisfy { $0 < $1 } && zip(numbers, numbers.dropFirst()).allSatisfy { $0 < $1 })
        // connected, then the loss with its error, the retry, connected again, and frames after it.
        let names = states()
        let lost = try #require(names.firstIndex(of: "disconnected"))
        #expect(names[..<lost].contains("connected") && names[lost...].contains("reconnecting") && names[lost...].contains("connected"))
        let reconnected = try #require(all.indices.last { all[$0]["type"] as? String == "source" && all[$0]["state"] as? String == "connected" })
        #expect(all[reconnected...].contains { $0["type"] as? String == "frame" })
        #expect(all.contains { $0["state"] as? String == "reconnecting" && ($0["attempt"] as? Int ?? 0) >= 1 && $0["error"] is String })
        #expect(run.errorOutput.contains("dropped"), "\(run.errorOutput)")
    }

    // A source that never connects: every state change is logged, the run gives up after
    // --give-up-after seconds, and nothing analyzed is an error, not a silent exit 0.
    @Test func aSourceThatNeverConnectsGivesUpWithAnError() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let port = freePort()  // nobody listens
        let out = folder.path("dead.jsonl")
        let started = Date()
        let result = try runProcess(segwatch, ["run", "rtsp://127.0.0.1:\(port)/stream", "--source-name", "dead",
                                               "--sam", RunCommandTests.sam, "--clip", RunCommandTests.clip, "--label", "car",
                                               "--open-timeout", "1", "--give-up-after", "3", "--json-out", out], timeout: 120)
        #expect(result.status != 0, "\(result.errorOutput)")
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(result.errorOutput.contains("dead: reconnecting") && result.errorOutput.contains("gave up after 3 s"), "\(result.errorOutput)")
        let states = jsonLines(out).filter { $0["type"] as? String == "source" }.map { $0["state"] as! String }
        #expect(states.contains("reconnecting") && states.last == "ended", "\(states)")
    }
}
