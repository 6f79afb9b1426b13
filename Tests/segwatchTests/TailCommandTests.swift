import Foundation
import SegwatchTestSupport
import Testing

/// `run --events-socket` and `segwatch tail`, as processes.
@Suite struct TailCommandTests {
    /// Every frame embedded, so that a segment's score differs from frame to frame (the filters
    /// need scores on both sides of a threshold; a track that keeps its embedding repeats one).
    private func run(_ out: String, socket: String, frames: Int) throws -> ProcessResult {
        try runProcess(segwatch, ["run", RunCommandTests.video, "--sam", RunCommandTests.sam, "--clip", RunCommandTests.clip,
                                  "--label", "car", "--label", "person", "--fps", "5", "--threads", "2", "--max-frames", "\(frames)",
                                  "--embed-every-frame", "--json-out", out, "--events-socket", socket] + RunCommandTests.generator, timeout: 300)
    }

    // tail is started before the run, sees it end, waits, and follows the next run on the same
    // socket: its output is the two runs' JSON lines, byte for byte.
    @Test func tailPrintsWhatRunWritesAcrossARestart() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let socket = folder.path("events.sock")
        let tail = try BackgroundProcess(segwatch, ["tail", "--socket", socket], stdout: folder.path("tail.out"), stderr: folder.path("tail.err"))
        defer { tail.signal(SIGKILL) }
        #expect(eventually(10) { tail.errorOutput.contains("waiting for") })
        for (name, frames) in [("a", 3), ("b", 2)] {
            let result = try run(folder.path("\(name).jsonl"), socket: socket, frames: frames)
            #expect(result.status == 0, "\(result.errorOutput)")
            #expect(!FileManager.default.fileExists(atPath: socket), "the socket file outlives the run")
        }
        let expected = try String(contentsOfFile: folder.path("a.jsonl"), encoding: .utf8)
            + String(contentsOfFile: folder.path("b.jsonl"), encoding: .utf8)
        #expect(eventually(10) { tail.output == expected }, "tail printed:\n\(tail.output.prefix(2000))")
        tail.signal(SIGTERM)
        #expect(tail.wait(timeout: 10) == 0)
        #expect(tail.errorOutput.contains("closed; waiting"), "\(tail.errorOutput)")
    }

    @Test func tailFilters() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        // The run is deterministic: a first one gives a --min-score that keeps some segments and drops others.
        let first = try run(folder.path("first.jsonl"), socket: folder.path("first.sock"), frames: 3)
        #expect(first.status == 0, "\(first.errorOutput)")
        let scores = try String(contentsOfFile: folder.path("first.jsonl"), encoding: .utf8).split(separator: "\n").flatMap { line in
            ((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["segments"] as? [[String: Any]] ?? []).map { $0["score"] as! Double }
        }.sorted()
        let threshold = try #require(scores.count >= 2 ? scores[scores.count / 2] : nil, "the run found fewer than 2 segments")
        #expect(scores.first! < threshold)
        let socket = folder.path("events.sock")
        let filters: [(String, [String])] = [("tracks", ["--type", "track"]), ("car", ["--label", "car"]),
                                             ("sure", ["--min-score", String(threshold)]), ("pretty", ["--pretty"])]
        let tails = try filters.map { name, options in
            try BackgroundProcess(segwatch, ["tail", "--socket", socket] + options, stdout: folder.path("\(name).out"),
                                  stderr: folder.path("\(name).err"))
        }
        defer { for tail in tails { tail.signal(SIGKILL) } }
        #expect(eventually(10) { tails.allSatisfy { $0.errorOutput.contains("waiting for") } })
        let result = try run(folder.path("a.jsonl"), socket: socket, frames: 3)
        #expect(result.status == 0, "\(result.errorOutput)")
        let all = try String(contentsOfFile: folder.path("a.jsonl"), encoding: .utf8).split(separator: "\n")
        let events = all.map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let trackLines = zip(all, events).filter { $0.1["type"] as? String == "track" }.map { String($0.0) + "\n" }
        #expect(eventually(10) { tails[0].output == trackLines.joined() }, "\(tails[0].output)")
        // Every printed frame holds only car segments, and every car segment of the run is printed.
        let carSegments = events.reduce(0) { count, event in
            count + ((event["segments"] as? [[String: Any]])?.filter { $0["label"] as? String == "car" }.count ?? 0)
        }
        _ = eventually(10) { tails[3].output.split(separator: "\n").count == all.count }
        for tail in tails { tail.signal(SIGTERM) }
        for tail in tails { #expect(tail.wait(timeout: 10) == 0) }
        let printed = tails[1].output.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let printedCars = printed.compactMap { $0["segments"] as? [[String: Any]] }.flatMap { $0 }
        #expect(printedCars.count == carSegments && printedCars.allSatisfy { $0["label"] as? String == "car" })
        #expect(printed.filter { $0["type"] as? String == "track" }.allSatisfy {
            $0["label"] as? String == "car" || $0["previous_label"] as? String == "car"
        })
        // Exactly the segments and tracks at or over the threshold, and the source events.
        var printedSure: [Double] = []
        for line in tails[2].output.split(separator: "\n") {
            let event = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            printedSure += (event["segments"] as? [[String: Any]])?.map { $0["score"] as! Double } ?? [event["best_score"] as? Double ?? 1]
        }
        let expectedSure = events.flatMap { event in
            (event["segments"] as? [[String: Any]])?.map { $0["score"] as! Double } ?? [event["best_score"] as? Double ?? 1]
        }.filter { $0 >= threshold }
        #expect(printedSure.sorted() == expectedSure.sorted() && !expectedSure.isEmpty)
        let pretty = tails[3].output.split(separator: "\n")
        #expect(pretty.count == all.count && pretty.allSatisfy { !$0.hasPrefix("{") } && pretty.contains { $0.contains("frame 0 key") })
    }

    // Two runs ("hosts") write to one PostgreSQL store at once: tail --store prints every line of
    // both, whole and unchanged, each host's in its own order; --camera keeps one host's.
    @Test func tailFollowsAFleetThroughItsStore() throws {
        let folder = try TemporaryFolder()
        let store = try TestPostgres.newDatabase()
        defer { folder.remove(); TestPostgres.dropDatabase(store) }
        let all = try BackgroundProcess(segwatch, ["tail", "--store", store], stdout: folder.path("all.out"), stderr: folder.path("all.err"))
        let one = try BackgroundProcess(segwatch, ["tail", "--store", store, "--camera", "gate"],
                                        stdout: folder.path("one.out"), stderr: folder.path("one.err"))
        defer { all.signal(SIGKILL); one.signal(SIGKILL) }
        #expect(eventually(30) { all.errorOutput.contains("listening on") && one.errorOutput.contains("listening on") }, "\(all.errorOutput)")
        #expect(!all.errorOutput.contains("segwatch:segwatch@"), "the password is shown: \(all.errorOutput)")
        let runs = try ["gate", "yard"].map { camera in
            try BackgroundProcess(segwatch, ["run", RunCommandTests.video, "--sam", RunCommandTests.sam, "--clip", RunCommandTests.clip,
                                             "--label", "car", "--label", "person", "--fps", "2", "--max-frames", "8", "--threads", "1",
                                             "--source-name", camera, "--json-out", folder.path("\(camera).jsonl"), "--store", store,
                                             "--state-dir", folder.path("state")] + RunCommandTests.generator,
                                  stdout: folder.path("\(camera).out"), stderr: folder.path("\(camera).err"))
        }
        for run in runs { #expect(run.wait(timeout: 300) == 0, "\(run.errorOutput)") }
        let written = try ["gate", "yard"].map { try String(contentsOfFile: folder.path("\($0).jsonl"), encoding: .utf8).split(separator: "\n").map(String.init) }
        #expect(written.allSatisfy { $0.count >= 9 })
        let total = written.map(\.count).reduce(0, +)
        #expect(eventually(30) { all.output.split(separator: "\n").count >= total && one.output.split(separator: "\n").count >= written[0].count })
        let printed = all.output.split(separator: "\n").map(String.init)
        #expect(printed.count == total)
        for lines in written {
            let source = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])["source"] as! String
            #expect(printed.filter { $0.contains("\"source\":\"\(source)\"") } == lines, "\(source)")
        }
        #expect(one.output.split(separator: "\n").map(String.init) == written[0])
    }

    // A run keeps its frame events in the store (--store-frames); tail --store S --since T prints
    // them, oldest first, as the run wrote them less their event_id. On SQLite that is all; on
    // PostgreSQL the live events of a later run follow, whole.
    @Test(arguments: StoreLocation.allCases) func tailReplaysTheFramesAStoreKept(kind: StoreLocation) throws {
        let folder = try TemporaryFolder()
        let store = try kind.make(folder)
        defer { folder.remove(); kind.remove(store) }
        func run(_ camera: String, _ extra: [String]) throws -> [String] {
            let result = try runProcess(segwatch, ["run", RunCommandTests.video, "--sam", RunCommandTests.sam, "--clip", RunCommandTests.clip,
                                                   "--label", "car", "--fps", "2", "--max-frames", "4", "--threads", "2", "--source-name", camera,
                                                   "--json-out", folder.path("\(camera).jsonl"), "--store", store,
                                                   "--state-dir", folder.path("state")] + RunCommandTests.generator + extra, timeout: 300)
            #expect(result.status == 0, "\(result.errorOutput)")
            return try String(contentsOfFile: folder.path("\(camera).jsonl"), encoding: .utf8).split(separator: "\n").map(String.init)
        }
        func object(_ line: String) -> NSDictionary? { try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? NSDictionary }
        let kept = try run("gate", ["--store-frames", "--store-frame-retain-days", "30"]).compactMap(object).filter { $0["type"] as? String == "frame" }
            .map { frame -> NSDictionary in
                let copy = frame.mutableCopy() as! NSMutableDictionary
                copy.removeObject(forKey: "event_id")
                return copy
            }
        #expect(kept.count == 4)
        switch kind {
        case .sqlite:
            let tail = try runProcess(segwatch, ["tail", "--store", store, "--since", "1d"], timeout: 60)
            #expect(tail.status == 0 && tail.output.split(separator: "\n").compactMap { object(String($0)) } == kept, "\(tail.errorOutput)")
            let live = try runProcess(segwatch, ["tail", "--store", store], timeout: 60)
            #expect(live.status != 0 && live.errorOutput.contains("--since"), "\(live.errorOutput)")
        case .postgres:
            let tail = try BackgroundProcess(segwatch, ["tail", "--store", store, "--since", "1d"], stdout: folder.path("tail.out"), stderr: folder.path("tail.err"))
            defer { tail.signal(SIGKILL) }
            #expect(eventually(30) { tail.output.split(separator: "\n").count >= kept.count }, "\(tail.errorOutput)")
            let later = try run("yard", [])
            #expect(eventually(30) { tail.output.split(separator: "\n").count >= kept.count + later.count })
            let printed = tail.output.split(separator: "\n").map(String.init)
            #expect(printed.prefix(kept.count).compactMap(object) == kept && Array(printed.dropFirst(kept.count)) == later)
        }
    }
}
