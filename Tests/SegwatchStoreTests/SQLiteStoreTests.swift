import Foundation
import SegwatchTestSupport
import Testing
@testable import SegwatchStore

@Suite struct SQLiteStoreTests {
    static func run(_ camera: String = "cam1") -> RunRecord {
        RunRecord(camera: camera, started: 1_765_000_000_000, clip: "clip_vit_b16", clipDigest: "c0ffee", headDigest: nil,
                  vocabularyDigest: "v1", labels: ["car", "person"], templates: ["a photo of a {}."], dimension: 3)
    }

    static func row(_ track: Int, start: Int64, end: Int64, label: String, embedding: [Float]) -> TrackRow {
        TrackRow(track: track, start: start, end: end, startPts: Double(start) / 1000, endPts: Double(end) / 1000, ended: false,
                 label: label, score: 0.5, observations: 1, embedding: embedding, bestEmbedding: embedding, bestScore: 0.5,
                 bestPts: Double(start) / 1000)
    }

    // From an empty file: the schema's tables; opened again, the same store (no second
    // migration); what was written is read back whole.
    @Test func createsMigratesAndReadsBack() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("nested/store.sqlite")
        let store = try SQLiteStore(path: path)
        let run = try store.beginRun(Self.run())
        var batch = FrameBatch(run: run, camera: "cam1", time: 1_765_000_001_000, pts: 1)
        batch.tracks = [Self.row(7, start: 1_765_000_001_000, end: 1_765_000_001_000, label: "car", embedding: [1, 0, 0])]
        batch.labelChanges = [LabelChange(track: 7, label: "car", previous: "unknown")]
        batch.boxes = [TrackBox(track: 7, box: [1, 2, 3, 4])]
        batch.thumbnails = [(7, Thumbnail(format: "png", data: Data([1, 2, 3])))]
        batch.stuff = [("sky", 0.25)]
        try store.write(batch)
        try store.endRun(run, time: 1_765_000_009_000)

        let reopened = try SQLiteStore(path: path)
        let track = try #require(try reopened.track(camera: "cam1", track: 7))
        #expect(track.row == batch.tracks[0])
        #expect(track.labelHistory == batch.labelChanges && track.boxes == [[1, 2, 3, 4]])
        #expect(track.thumbnail == Thumbnail(format: "png", data: Data([1, 2, 3])))
        #expect(try reopened.runs().map(\.record) == [Self.run()] && reopened.runs().first?.ended == 1_765_000_009_000)
        #expect(try reopened.track(camera: "cam2", track: 7) == nil)
    }

    // A track's later frames update its one row (the camera and track id name it).
    @Test func laterFramesUpdateTheRow() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let store = try SQLiteStore(path: folder.path("s.sqlite"))
        let run = try store.beginRun(Self.run())
        for (frame, label) in ["unknown", "car", "person"].enumerated() {
            var batch = FrameBatch(run: run, camera: "cam1", time: 1000 + Int64(frame), pts: Double(frame))
            batch.tracks = [Self.row(3, start: 1000, end: 1000 + Int64(frame), label: label, embedding: [0, 1, 0])]
            try store.write(batch)
        }
        let track = try #require(try store.track(camera: "cam1", track: 3))
        #expect(track.row.label == "person" && track.row.end == 1002 && track.row.start == 1000)
        #expect(try store.candidates(TrackFilter()).count == 1)
    }

    // Filters by camera, time (a track seen in the window) and label; ranking is by exact
    // cosine, best first, with each hit's rank among all candidates.
    @Test func filtersAndRanks() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let store = try SQLiteStore(path: folder.path("s.sqlite"))
        let rows: [(String, TrackRow)] = [
            ("cam1", Self.row(1, start: 100, end: 200, label: "car", embedding: [1, 0, 0])),
            ("cam1", Self.row(2, start: 300, end: 400, label: "person", embedding: [0.6, 0.8, 0])),
            ("cam2", Self.row(1, start: 150, end: 500, label: "car", embedding: [0, 0, 1])),
        ]
        for (camera, row) in rows {
            let run = try store.beginRun(Self.run(camera))
            var batch = FrameBatch(run: run, camera: camera, time: row.end, pts: row.endPts)
            batch.tracks = [row]
            try store.write(batch)
        }
        func tracks(_ filter: TrackFilter) throws -> [Int] {
            try store.tracks(try store.candidates(filter).map(\.id)).map { $0.camera == "cam1" ? $0.row.track : 10 + $0.row.track }.sorted()
        }
        #expect(try tracks(TrackFilter()) == [1, 2, 11])
        #expect(try tracks(TrackFilter(camera: "cam1")) == [1, 2])
        #expect(try tracks(TrackFilter(since: 250)) == [2, 11])
        #expect(try tracks(TrackFilter(until: 120)) == [1])
        #expect(try tracks(TrackFilter(since: 210, until: 290)) == [11])
        #expect(try tracks(TrackFilter(label: "car")) == [1, 11])

        let query: [Float] = [0.8, 0.6, 0]
        let hits = rankTracks(query, among: try store.candidates(TrackFilter()), limit: 2)
        let stored = try store.tracks(hits.map(\.id))
        #expect(stored.map(\.row.track) == [2, 1] && hits.map(\.rank) == [1, 2])
        #expect(abs(hits[0].score - 0.96) < 1e-6 && abs(hits[1].score - 0.8) < 1e-6)
    }

    // Not a store: a text file, another program's SQLite database, a store of a newer schema:
    // each refused with the path and what was expected, nothing changed.
    @Test func refusesWhatIsNotItsStore() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try "hello, not a database\n".write(toFile: folder.path("text.sqlite"), atomically: true, encoding: .utf8)
        #expect(throws: StoreError.self) { try SQLiteStore(path: folder.path("text.sqlite")) }

        let other = folder.path("other.sqlite")
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        sqlite.arguments = ["python3", "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('create table notes (x)'); c.commit()", other]
        try sqlite.run()
        sqlite.waitUntilExit()
        do {
            _ = try SQLiteStore(path: other)
            Issue.record("another database was opened as a store")
        } catch {
            #expect("\(error)".contains("other.sqlite") && "\(error)".contains("'notes'"), "\(error)")
        }

        let newer = folder.path("newer.sqlite")
        _ = try SQLiteStore(path: newer)
        let bump = Process()
        bump.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        bump.arguments = ["python3", "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"insert into grdb_migrations values ('v99')\"); c.commit()", newer]
        try bump.run()
        bump.waitUntilExit()
        #expect(throws: StoreError.newerSchema(store: newer, found: "v99", known: StoreSchema.latest)) { try SQLiteStore(path: newer) }
    }
}

@Suite struct RetentionTests {
    // 2,000 tracks a second apart, each with an 8 KB thumbnail: by age, the tracks last seen
    // before the cut go with their thumbnails and the file shrinks; by size, the oldest go until
    // the store fits, the newest stay.
    @Test func prunesByAgeAndBySize() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("s.sqlite")
        let store = try SQLiteStore(path: path)
        let run = try store.beginRun(SQLiteStoreTests.run())
        var generator = SplitMix(seed: 7)
        for start in stride(from: 0, to: 2000, by: 100) {
            var batch = FrameBatch(run: run, camera: "cam1", time: Int64(start + 99) * 1000, pts: Double(start))
            for t in start..<(start + 100) {
                batch.tracks.append(SQLiteStoreTests.row(t + 1, start: Int64(t) * 1000, end: Int64(t) * 1000 + 500, label: "car", embedding: [1, 0, 0]))
                batch.thumbnails.append((t + 1, Thumbnail(format: "jpeg", data: Data((0..<8192).map { _ in UInt8(truncatingIfNeeded: generator.next()) }))))
            }
            try store.write(batch)
        }
        let first = try store.prune(before: 1_000_000, maxBytes: nil)
        #expect(first.tracksDeleted == 1000 && first.bytesAfter < first.bytesBefore * 6 / 10, "\(first)")
        #expect(try store.track(camera: "cam1", track: 1000) == nil && store.track(camera: "cam1", track: 1001)?.thumbnail?.data.count == 8192)
        #expect(try store.candidates(TrackFilter()).count == 1000)

        let second = try store.prune(before: nil, maxBytes: first.bytesAfter / 2)
        let left = try store.tracks(try store.candidates(TrackFilter()).map(\.id)).map(\.row.track).sorted()
        #expect(second.bytesAfter <= first.bytesAfter / 2 + 64 * 1024 && second.tracksDeleted == 1000 - left.count, "\(second)")
        #expect(left.count > 300 && left.count < 600 && left.last == 2000 && left == Array(left.first!...2000), "\(left.count) left")
    }
}

@Suite struct TrackLedgerTests {
    // Four frames of one track: its embedding is the normalized mean of the embeddings computed
    // on their own frame (a carried-over one does not count), its best observation the
    // highest-scoring, boxes at the 1st, 2nd and 4th sighting and its last, the label change
    // kept, the start and end its first and last sighting; ended tracks leave the ledger.
    @Test func accumulatesATrack() {
        var ledger = TrackLedger(run: 1, camera: "cam1")
        func segment(_ embedding: [Float]?, scored: [Float], score: Double, label: String = "car", box: [Int]) -> ObservedSegment {
            ObservedSegment(track: 5, label: label, score: score, embedding: embedding, scoredEmbedding: scored, box: box)
        }
        let a: [Float] = [2, 0, 0], b: [Float] = [0, 3, 0], c: [Float] = [0, 0, 1]
        var (batch, newBest) = ledger.frame(time: 1000, pts: 1, segments: [segment(a, scored: a, score: 0.4, box: [0, 0, 1, 1])],
                                             events: [ObservedTrackEvent(kind: .start, track: 5, label: "car", previous: nil, pts: 1, bestScore: 0.4)],
                                             stuff: [])
        #expect(newBest == [5])
        #expect(batch.tracks.map(\.embedding) == [[1, 0, 0]] && batch.boxes.count == 1)
        (batch, newBest) = ledger.frame(time: 2000, pts: 2, segments: [segment(b, scored: b, score: 0.9, box: [0, 0, 2, 2])], events: [], stuff: [])
        #expect(newBest == [5])
        let half = Float(0.5).squareRoot()
        #expect(batch.tracks[0].embedding.enumerated().allSatisfy { abs($0.element - [half, half, 0][$0.offset]) < 1e-6 })
        #expect(batch.tracks[0].bestEmbedding == [0, 1, 0] && batch.tracks[0].bestScore == 0.9 && batch.tracks[0].bestPts == 2)
        (batch, newBest) = ledger.frame(time: 3000, pts: 3, segments: [segment(nil, scored: b, score: 0.8, label: "person", box: [0, 0, 3, 3])],
                             events: [ObservedTrackEvent(kind: .label, track: 5, label: "person", previous: "car", pts: 3, bestScore: 0.9)],
                             stuff: [("sky", 0.5)])
        #expect(newBest.isEmpty && batch.tracks[0].observations == 2 && batch.boxes.isEmpty && batch.labelChanges == [LabelChange(track: 5, label: "person", previous: "car")])
        (batch, _) = ledger.frame(time: 4000, pts: 4, segments: [segment(c, scored: c, score: 0.5, label: "person", box: [0, 0, 4, 4])], events: [], stuff: [])
        #expect(batch.boxes.map(\.box) == [[0, 0, 4, 4]])
        (batch, _) = ledger.frame(time: 5000, pts: 5, segments: [segment(c, scored: c, score: 0.5, label: "person", box: [0, 0, 5, 5])], events: [], stuff: [])
        #expect(batch.boxes.isEmpty)
        (batch, _) = ledger.frame(time: 6000, pts: 6, segments: [],
                             events: [ObservedTrackEvent(kind: .end, track: 5, label: "person", previous: nil, pts: 6, bestScore: 0.9)], stuff: [])
        let row = batch.tracks[0]
        #expect(row.ended && row.start == 1000 && row.end == 5000 && row.startPts == 1 && row.endPts == 5 && row.label == "person")
        #expect(row.observations == 4 && batch.boxes.map(\.box) == [[0, 0, 5, 5]])
        let mean = normalizedForTest([1, 1, 2])
        #expect(row.embedding.enumerated().allSatisfy { abs($0.element - mean[$0.offset]) < 1e-6 }, "\(row.embedding)")
        #expect(ledger.liveTracks == 0)
    }

    private func normalizedForTest(_ v: [Float]) -> [Float] {
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return v.map { $0 / n }
    }
}

@Suite struct TrackIndexTests {
    static func unit(_ generator: inout SplitMix, _ dimension: Int) -> [Float] {
        let values = (0..<dimension).map { _ in Float(Double(generator.next() % 2_000_001) / 1_000_000 - 1) }
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return values.map { $0 / norm }
    }

    // The kernel's integer dot products equal a scalar loop's, at widths with and without a
    // vector tail; a code maps back to its embedding within half a step.
    @Test func codesAndTheirDotProducts() {
        var generator = SplitMix(seed: 3)
        for dimension in [1, 15, 16, 37, 512, 769] {
            let index = TrackIndex(dimension: dimension)
            let rows = (0..<50).map { _ in Self.unit(&generator, dimension) }
            for (i, row) in rows.enumerated() { index.upsert(id: Int64(i), code: TrackCode(row)) }
            let query = Self.unit(&generator, dimension), q = TrackCode(query)
            let found = index.nearest(query, count: 50, threads: 1)
            for (id, score) in found {
                let c = TrackCode(rows[Int(id)])
                let integer = zip(c.values, q.values).reduce(Int32(0)) { $0 + Int32($1.0) * Int32($1.1) }
                #expect(score == Float(integer) * c.scale * q.scale, "dimension \(dimension), row \(id)")
            }
            #expect(zip(found, found.dropFirst()).allSatisfy { $0.score >= $1.score } && Set(found.map(\.id)).count == 50)
            let code = TrackCode(rows[0])
            #expect(zip(code.values, rows[0]).allSatisfy { abs(Float($0) * code.scale - $1) <= code.scale / 2 + 1e-7 })
        }
    }

    // On 20,000 random unit vectors of CLIP's width, the first pass with 100 candidates keeps
    // every exact top 10 of 20 queries, split across threads or not; an upsert replaces a code.
    @Test func firstPassKeepsTheExactTopTen() {
        var generator = SplitMix(seed: 11)
        let dimension = 512, index = TrackIndex(dimension: dimension)
        let rows = (0..<20_000).map { _ in Self.unit(&generator, dimension) }
        for (i, row) in rows.enumerated() { index.upsert(id: Int64(i), code: TrackCode(row)) }
        for _ in 0..<20 {
            let query = Self.unit(&generator, dimension)
            let exact = rankTracks(query, among: rows.enumerated().map { TrackEmbedding(id: Int64($0.offset), embedding: $0.element) }, limit: 10)
            let one = index.nearest(query, count: 100, threads: 1), two = index.nearest(query, count: 100, threads: 2)
            #expect(Set(exact.map(\.id)).isSubset(of: Set(one.map(\.id))))
            #expect(one.map(\.id) == two.map(\.id))
        }
        index.upsert(id: 5, code: TrackCode(rows[7]))
        #expect(index.count == 20_000 && index.nearest(rows[7], count: 2, threads: 1).map(\.id).sorted() == [5, 7])
    }
}
