import Foundation
import SegwatchCheckpoint
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// Where a test's store lives: a SQLite file, or a database of its own on the test PostgreSQL.
enum StoreLocation: String, CaseIterable, Sendable {
    case sqlite, postgres

    /// A new, empty store's location; the database of a PostgreSQL one is dropped by `remove`.
    func make(_ folder: TemporaryFolder) throws -> String {
        switch self {
        case .sqlite: return folder.path("store.sqlite")
        case .postgres: return try TestPostgres.newDatabase()
        }
    }

    func remove(_ location: String) {
        if self == .postgres { TestPostgres.dropDatabase(location) }
    }
}

@Suite struct StoreCommandTests {
    static let camera = "bikes.mp4"

    private func lines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    private func json(_ result: ProcessResult) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(result.output.utf8))
    }

    // A run over bikes.mp4 (fixture weights) with --store: every track its events name is in the
    // store, with the start of its `start` event, the time and pts of the last frame that shows
    // it, and the label of its `end` event. Search ranks every stored track, best first, by the
    // cosine between `vocab --label TEXT`'s embedding and the track's exported embedding.
    @Test(arguments: StoreLocation.allCases) func runKeepsItsTracksAndSearchRanksThem(kind: StoreLocation) throws {
        let folder = try TemporaryFolder()
        let store = try kind.make(folder)
        defer { folder.remove(); kind.remove(store) }
        let run = try runProcess(segwatch, ["run", RunCommandTests.video, "--sam", RunCommandTests.sam, "--clip", RunCommandTests.clip,
                                            "--label", "car", "--label", "person", "--label", "bicycle", "--fps", "2", "--threads", "2",
                                            "--json-out", folder.path("events.jsonl"), "--store", store, "--state-dir", folder.path("state")]
                                 + RunCommandTests.generator, timeout: 600)
        #expect(run.status == 0, "\(run.errorOutput)")
        let events = try lines(folder.path("events.jsonl"))
        let frames = events.filter { $0["type"] as? String == "frame" }
        let trackEvents = events.filter { $0["type"] as? String == "track" }
        let started = trackEvents.filter { $0["event"] as? String == "start" }
        #expect(!started.isEmpty)
        for start in started {
            let id = start["track"] as! Int
            let result = try runProcess(segwatch, ["search", "--store", store, "--camera", Self.camera, "--track", "\(id)", "--json",
                                                   "--thumbnails", folder.path("thumbnails")], timeout: 60)
            #expect(result.status == 0, "\(result.errorOutput)")
            guard let stored = try json(result) as? [String: Any] else { Issue.record("track \(id): \(result.output)"); continue }
            let seen = frames.filter { ($0["segments"] as! [[String: Any]]).contains { $0["track"] as? Int == id } }
            let end = trackEvents.last { $0["track"] as? Int == id && $0["event"] as? String == "end" }
            #expect(stored["start"] as? String == start["time"] as? String && stored["start_pts"] as? Double == start["pts"] as? Double, "track \(id)")
            #expect(stored["end"] as? String == seen.last?["time"] as? String && stored["end_pts"] as? Double == seen.last?["pts"] as? Double,
                    "track \(id)")
            #expect(stored["label"] as? String == end?["label"] as? String, "track \(id)")
            #expect((stored["embedding"] as? [Double])?.count == 32, "track \(id)")
            // Its thumbnail: a JPEG of at most 160 pixels a side that ffprobe reads.
            let thumbnail = try #require(stored["thumbnail"] as? String, "track \(id)")
            let probe = try runProcess("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", thumbnail],
                                       timeout: 30)
            let fields = probe.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",")
            #expect(fields.first == "mjpeg" && fields.dropFirst().allSatisfy { (Int($0) ?? 0) > 0 && Int($0)! <= 160 }, "\(thumbnail): \(probe.output)")
        }

        let query = "a red bicycle"
        let vocab = try runProcess(segwatch, ["vocab", "--clip", RunCommandTests.clip, "--label", query, "--out", folder.path("query.safetensors")],
                                   timeout: 120)
        #expect(vocab.status == 0, "\(vocab.errorOutput)")
        let embedding = try StateDict.load(folder.path("query.safetensors")).tensor("labels.embeds").contiguous().toArray().map(Double.init)
        let search = try runProcess(segwatch, ["search", query, "--store", store, "--limit", "1000", "--json"], timeout: 120)
        #expect(search.status == 0, "\(search.errorOutput)")
        let results = try #require(try json(search) as? [[String: Any]])
        #expect(results.count == started.count)
        let scores = results.map { $0["score"] as! Double }
        #expect(zip(scores, scores.dropFirst()).allSatisfy { $0 >= $1 } && results.map { $0["rank"] as! Int } == Array(1...results.count))
        for result in results {
            let id = result["track"] as! Int
            let exported = try json(try runProcess(segwatch, ["search", "--store", store, "--camera", Self.camera, "--track", "\(id)", "--json"],
                                                   timeout: 60)) as! [String: Any]
            let cosine = zip(embedding, exported["embedding"] as! [Double]).reduce(0) { $0 + $1.0 * $1.1 }
            #expect(abs(cosine - (result["score"] as! Double)) < 1e-6, "track \(id): \(cosine) vs \(result["score"]!)")
            #expect(result["camera"] as? String == Self.camera)
        }

        // Filters: a label keeps only its tracks; a camera that never ran is named.
        let label = results[0]["label"] as! String
        let filtered = try json(try runProcess(segwatch, ["search", query, "--store", store, "--label", label, "--limit", "1000", "--json"],
                                               timeout: 120)) as! [[String: Any]]
        #expect(!filtered.isEmpty && filtered.allSatisfy { $0["label"] as? String == label })
        #expect(filtered.count == results.filter { $0["label"] as? String == label }.count)

        // Relabeling: each stored track's new label and score are its embedding classified
        // directly against `vocab`'s embeddings of the new labels (softmax over CLIP's scaled
        // cosines, no background prompts); --label then finds them.
        let relabel = try runProcess(segwatch, ["relabel", "--store", store, "--label", "car", "--label", "bicycle", "--no-background", "--json"],
                                     timeout: 120)
        #expect(relabel.status == 0, "\(relabel.errorOutput)")
        let summary = try #require(try json(relabel) as? [String: Any])
        #expect(summary["tracks"] as? Int == started.count)
        let words = try runProcess(segwatch, ["vocab", "--clip", RunCommandTests.clip, "--label", "car", "--label", "bicycle",
                                              "--out", folder.path("words.safetensors")], timeout: 120)
        #expect(words.status == 0, "\(words.errorOutput)")
        let table = try StateDict.load(folder.path("words.safetensors")).tensor("labels.embeds").contiguous().toArray().map(Double.init)
        let logitScale = try StateDict.load(URL(fileURLWithPath: RunCommandTests.clip).appendingPathComponent("model.safetensors").path)
            .tensor("logit_scale").contiguous().toArray()[0]
        var bicycleTracks = Set<Int>()
        for result in results {
            let exported = try json(try runProcess(segwatch, ["search", "--store", store, "--camera", Self.camera, "--track", "\(result["track"]!)",
                                                              "--json"], timeout: 60)) as! [String: Any]
            let embedding = exported["embedding"] as! [Double]
            let cosines = (0..<2).map { row in (0..<32).reduce(0.0) { $0 + table[row * 32 + $1] * embedding[$1] } }
            let best = cosines[1] > cosines[0] ? 1 : 0
            let exps = cosines.map { exp(Double(exp(logitScale)) * ($0 - cosines[best])) }
            let labeling = try #require((exported["labelings"] as? [[String: Any]])?.last)
            #expect(labeling["label"] as? String == ["car", "bicycle"][best] && labeling["vocabulary"] as? String == summary["vocabulary"] as? String)
            #expect(abs((labeling["score"] as! Double) - 1 / exps.reduce(0, +)) < 1e-5, "\(labeling) vs \(cosines)")
            if best == 1 || result["label"] as? String == "bicycle" { bicycleTracks.insert(result["track"] as! Int) }
        }
        let bicycles = try json(try runProcess(segwatch, ["search", query, "--store", store, "--label", "bicycle", "--limit", "1000", "--json"],
                                               timeout: 120)) as! [[String: Any]]
        #expect(Set(bicycles.map { $0["track"] as! Int }) == bicycleTracks && bicycles.count == bicycleTracks.count)

        let none = try runProcess(segwatch, ["search", query, "--store", store, "--camera", "gate"], timeout: 60)
        #expect(none.status != 0 && none.errorOutput.contains("no runs stored for camera 'gate'"), "\(none.errorOutput)")
        if kind == .sqlite {
            let missing = try runProcess(segwatch, ["search", query, "--store", folder.path("nothing.sqlite")], timeout: 60)
            #expect(missing.status != 0 && missing.errorOutput.contains("nothing.sqlite: no such store"), "\(missing.errorOutput)")
            try searchByExample(store: store, folder: folder, tracks: started.count)
        }
    }

    /// Search by example on the store of a run over bikes.mp4 (no head): a frame of the video at
    /// 448x448, CLIP's grid at --clip-size 448 with nothing resized, so that the whole-picture
    /// query is the mean of `embed --dense`'s patch features, normalized; every result's score
    /// is its cosine with the track's exported embedding. A box query (SAM's segment of it) ranks
    /// every track as well; mistakes are named.
    private func searchByExample(store: String, folder: TemporaryFolder, tracks: Int) throws {
        let picture = folder.path("frame.png")
        let frame = try runProcess("/usr/bin/ffmpeg", ["-v", "error", "-y", "-i", RunCommandTests.video, "-vf", "select=eq(n\\,10),scale=448:448",
                                                       "-frames:v", "1", picture], timeout: 60)
        #expect(frame.status == 0, "\(frame.errorOutput)")
        let embed = try runProcess(segwatch, ["embed", "--clip", RunCommandTests.clip, "--image", picture, "--size", "448x448", "--dense",
                                              "--out", folder.path("dense.safetensors")], timeout: 120)
        #expect(embed.status == 0, "\(embed.errorOutput)")
        let dense = try StateDict.load(folder.path("dense.safetensors")).tensor("image.dense").contiguous()
        let width = dense.shape[3], patches = dense.shape[1] * dense.shape[2], values = dense.toArray()
        var mean = [Double](repeating: 0, count: width)
        for p in 0..<patches { for d in 0..<width { mean[d] += Double(values[p * width + d]) } }
        let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let query = mean.map { $0 / norm }

        let search = try runProcess(segwatch, ["search", "--image", picture, "--store", store, "--limit", "1000", "--json"], timeout: 120)
        #expect(search.status == 0, "\(search.errorOutput)")
        let results = try #require(try json(search) as? [[String: Any]])
        #expect(results.count == tracks && results.map { $0["rank"] as! Int } == Array(1...max(results.count, 1)))
        for result in results {
            let exported = try json(try runProcess(segwatch, ["search", "--store", store, "--camera", Self.camera, "--track", "\(result["track"]!)",
                                                              "--json"], timeout: 60)) as! [String: Any]
            let cosine = zip(query, exported["embedding"] as! [Double]).reduce(0) { $0 + $1.0 * $1.1 }
            #expect(abs(cosine - (result["score"] as! Double)) < 1e-5, "track \(result["track"]!): \(cosine) vs \(result["score"]!)")
        }

        let boxed = try runProcess(segwatch, ["search", "--image", picture, "--box", "100,120,300,340", "--sam", RunCommandTests.sam,
                                              "--store", store, "--limit", "1000", "--json"], timeout: 120)
        let boxResults = try json(boxed) as? [[String: Any]] ?? []
        let boxScores = boxResults.map { $0["score"] as! Double }
        #expect(boxed.status == 0 && boxResults.count == tracks && zip(boxScores, boxScores.dropFirst()).allSatisfy { $0 >= $1 }, "\(boxed.errorOutput)")
        #expect(boxScores != results.map { $0["score"] as! Double }, "the box's segment scored as the whole picture")

        let noSam = try runProcess(segwatch, ["search", "--image", picture, "--box", "1,1,9,9", "--store", store], timeout: 60)
        #expect(noSam.status != 0 && noSam.errorOutput.contains("--sam"), "\(noSam.errorOutput)")
        let outside = try runProcess(segwatch, ["search", "--image", picture, "--box", "400,400,900,900", "--sam", RunCommandTests.sam,
                                                "--store", store], timeout: 60)
        #expect(outside.status != 0 && outside.errorOutput.contains("not inside the 448x448 picture"), "\(outside.errorOutput)")
        let head = try runProcess(segwatch, ["search", "--image", picture, "--head", folder.path("frame.png"), "--store", store], timeout: 60)
        #expect(head.status != 0 && head.errorOutput.contains("without a segment head"), "\(head.errorOutput)")
    }

    // kill -9 in the middle of a run: the store opens, and every track whose `start` event
    // reached the JSON lines is in it (each frame is committed before its events are written).
    @Test(arguments: StoreLocation.allCases) func aKilledRunLeavesAReadableStore(kind: StoreLocation) throws {
        let folder = try TemporaryFolder()
        let (store, out) = (try kind.make(folder), folder.path("events.jsonl"))
        defer { folder.remove(); kind.remove(store) }
        let run = try BackgroundProcess(segwatch, ["run", RunCommandTests.video, "--sam", RunCommandTests.sam, "--clip", RunCommandTests.clip,
                                                   "--label", "car", "--label", "person", "--fps", "0", "--threads", "2", "--json-out", out,
                                                   "--store", store, "--state-dir", folder.path("state")] + RunCommandTests.generator,
                                        stdout: folder.path("stdout"), stderr: folder.path("stderr"))
        /// The whole lines written so far.
        func events() -> [[String: Any]] {
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").dropLast(text.hasSuffix("\n") ? 0 : 1).compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        // Killed between two frames or in the middle of one, after a few frames with tracks.
        #expect(eventually(300, every: 0.05) {
            let lines = events()
            return lines.contains { $0["event"] as? String == "start" } && lines.count(where: { $0["type"] as? String == "frame" }) >= 6
        }, "\(run.errorOutput)")
        run.signal(SIGKILL)
        _ = run.wait(timeout: 30)
        let tracks = events().filter { $0["event"] as? String == "start" }.map { $0["track"] as! Int }
        for id in tracks {
            let result = try runProcess(segwatch, ["search", "--store", store, "--camera", Self.camera, "--track", "\(id)", "--json"], timeout: 60)
            #expect(result.status == 0 && result.output.contains("\"track\":\(id)"), "track \(id): \(result.errorOutput)")
        }
        let search = try runProcess(segwatch, ["search", "a car", "--store", store, "--limit", "1000", "--json"], timeout: 120)
        let results = try JSONSerialization.jsonObject(with: Data(search.output.utf8)) as? [[String: Any]]
        #expect(search.status == 0 && (results?.count ?? 0) >= tracks.count, "\(search.errorOutput)")
    }

    // Retention on the command line: a second run that keeps tracks for a moment only deletes
    // the first run's at its start, and keeps its own.
    @Test func aRunAppliesRetention() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let store = folder.path("store.sqlite")
        func run(_ name: String, _ extra: [String]) throws -> [Int] {
            let result = try runProcess(segwatch, ["run", RunCommandTests.video, "--sam", RunCommandTests.sam, "--clip", RunCommandTests.clip,
                                                   "--label", "car", "--fps", "1", "--max-frames", "2", "--threads", "2",
                                                   "--json-out", folder.path("\(name).jsonl"), "--store", store, "--state-dir", folder.path("state")]
                                        + RunCommandTests.generator + extra, timeout: 300)
            #expect(result.status == 0, "\(result.errorOutput)")
            return try String(contentsOfFile: folder.path("\(name).jsonl"), encoding: .utf8).split(separator: "\n").compactMap {
                let event = try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                return event?["event"] as? String == "start" ? event?["track"] as? Int : nil
            }
        }
        func stored(_ track: Int) throws -> Bool {
            try runProcess(segwatch, ["search", "--store", store, "--camera", Self.camera, "--track", "\(track)", "--json"], timeout: 60).status == 0
        }
        let first = try run("a", [])
        #expect(!first.isEmpty && first.allSatisfy { (try? stored($0)) == true })
        Thread.sleep(forTimeInterval: 1)
        let second = try run("b", ["--store-retain-days", "0.00001"])
        #expect(first.allSatisfy { (try? stored($0)) == false } && second.allSatisfy { (try? stored($0)) == true })
        let bad = try runProcess(segwatch, ["run", RunCommandTests.video, "--sam", RunCommandTests.sam, "--clip", RunCommandTests.clip, "--label", "car",
                                            "--store", store, "--store-max-size", "lots"], timeout: 60)
        #expect(bad.status != 0 && bad.errorOutput.contains("--store-max-size must be a size"), "\(bad.errorOutput)")
    }

}
