import Foundation
import SegwatchTestSupport
import Testing
@testable import SegwatchStore

/// The two implementations of `SegmentStore`; every test of this suite runs on both.
enum StoreKind: String, CaseIterable, Sendable {
    case sqlite, postgres
}

/// A new, empty store of one kind (a file in a temporary folder, or a database of its own on the
/// test server), which a test may open several times, as several processes would.
final class TestStore {
    let kind: StoreKind
    let location: String
    private let folder: TemporaryFolder?

    init(_ kind: StoreKind) throws {
        self.kind = kind
        switch kind {
        case .sqlite:
            let folder = try TemporaryFolder()
            (self.folder, location) = (folder, folder.path("nested/store.sqlite"))
        case .postgres:
            (folder, location) = (nil, try TestPostgres.newDatabase())
        }
    }

    /// The store, its schema migrated up to `upTo` (the latest when nil).
    func open(upTo: String? = nil) throws -> any SegmentStore {
        switch kind {
        case .sqlite: return try SQLiteStore(path: location, upTo: upTo)
        case .postgres: return try PostgresStore(url: location, upTo: upTo)
        }
    }

    /// The migrations applied to `store` (one of this kind), in order.
    func appliedMigrations(_ store: any SegmentStore) throws -> [String] {
        switch store {
        case let store as SQLiteStore: return try store.appliedMigrations()
        case let store as PostgresStore: return try store.appliedMigrations()
        default: throw StoreError.mismatch(store: location, reason: "not a store of this test")
        }
    }

    deinit {
        folder?.remove()
        if kind == .postgres { TestPostgres.dropDatabase(location) }
    }
}

@Suite struct SegmentStoreTests {
    static func run(_ camera: String = "cam1") -> RunRecord {
        RunRecord(camera: camera, started: 1_765_000_000_000, clip: "clip_vit_b16", clipDigest: "c0ffee", headDigest: nil,
                  vocabularyDigest: "v1", labels: ["car", "person"], templates: ["a photo of a {}."], dimension: 3)
    }

    static func row(_ track: Int, start: Int64, end: Int64, label: String, embedding: [Float]) -> TrackRow {
        TrackRow(track: track, start: start, end: end, startPts: Double(start) / 1000, endPts: Double(end) / 1000, ended: false,
                 label: label, score: 0.5, observations: 1, embedding: embedding, bestEmbedding: embedding, bestScore: 0.5,
                 bestPts: Double(start) / 1000)
    }

    // From empty: the schema's migrations, once; opened again, the same store (no second
    // migration); what was written is read back whole.
    @Test(arguments: StoreKind.allCases) func createsMigratesAndReadsBack(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let store = try test.open()
        let run = try store.beginRun(Self.run())
        var batch = FrameBatch(run: run, camera: "cam1", time: 1_765_000_001_000, pts: 1)
        batch.tracks = [Self.row(7, start: 1_765_000_001_000, end: 1_765_000_001_000, label: "car", embedding: [1, 0, 0])]
        batch.labelChanges = [LabelChange(track: 7, label: "car", previous: "unknown")]
        batch.boxes = [TrackBox(track: 7, box: [1, 2, 3, 4])]
        batch.thumbnails = [(7, Thumbnail(format: "png", data: Data([1, 2, 3])))]
        batch.stuff = [("sky", 0.25)]
        try store.write(batch)
        var second = FrameBatch(run: run, camera: "cam1", time: 1_765_000_002_000, pts: 2)
        second.labelChanges = [LabelChange(track: 7, label: "person", previous: "car")]
        second.boxes = [TrackBox(track: 7, box: [5, 6, 7, 8])]
        try store.write(second)
        try store.endRun(run, time: 1_765_000_009_000)

        let reopened = try test.open()
        #expect(try test.appliedMigrations(reopened) == StoreSchema.migrations.map(\.name))
        let track = try #require(try reopened.track(camera: "cam1", track: 7))
        #expect(track.row == batch.tracks[0])
        #expect(track.labelHistory == batch.labelChanges + second.labelChanges && track.boxes == [[1, 2, 3, 4], [5, 6, 7, 8]])
        #expect(track.thumbnail == Thumbnail(format: "png", data: Data([1, 2, 3])))
        #expect(try reopened.runs().map(\.record) == [Self.run()] && reopened.runs().first?.ended == 1_765_000_009_000)
        #expect(try reopened.track(camera: "cam2", track: 7) == nil)
        #expect(try reopened.thumbnail(track.id) == track.thumbnail && reopened.tracks([track.id + 1000, track.id]).map(\.id) == [track.id])
    }

    // A store written by the previous version (its migrations up to the one before the latest,
    // and rows as that version wrote them, in SQL), opened by this one: the rest applied, what
    // it held kept.
    @Test(arguments: StoreKind.allCases) func migratesFromThePreviousVersion(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let previous = StoreSchema.migrations.dropLast().last!.name
        let old = try test.open(upTo: previous)
        #expect(try test.appliedMigrations(old) == StoreSchema.migrations.dropLast().map(\.name))
        // The embedding [0, 0, 1] as float32 and float16 little-endian bytes, and its int8 code.
        let (embedding, code, half) = ("00000000000000000000803f", "00007f", "00000000003c")
        func bytes(_ hex: String) -> String { kind == .sqlite ? "X'\(hex)'" : "'\\x\(hex)'::bytea" }
        let statements = [
            "INSERT INTO cameras (name) VALUES ('cam1')",
            """
            INSERT INTO runs (camera_id, started, clip, clip_digest, head_digest, vocabulary_digest, labels, templates, dimension)
            VALUES (1, 1765000000000, 'clip_vit_b16', 'c0ffee', NULL, 'v1', '["car","person"]', '["a photo of a {}."]', 3)
            """,
            """
            INSERT INTO tracks (camera_id, run_id, track, start_time, end_time, start_pts, end_pts, ended, label, score, observations,
                                embedding, code, code_scale, best_embedding, best_score, best_pts)
            VALUES (1, 1, 3, 4000, 5000, 4.0, 5.0, 0, 'car', 0.5, 1, \(bytes(embedding)), \(bytes(code)), 0.007874015748031496, \(bytes(half)), 0.5, 4.0)
            """,
        ]
        for statement in statements {
            switch kind {
            case .sqlite: try runSQLite(test.location, statement)
            case .postgres: try TestPostgres.psql(test.location, statement)
            }
        }

        let store = try test.open()
        #expect(try test.appliedMigrations(store) == StoreSchema.migrations.map(\.name))
        #expect(try store.track(camera: "cam1", track: 3)?.row == Self.row(3, start: 4000, end: 5000, label: "car", embedding: [0, 0, 1]))
        #expect(try store.runs().map(\.record) == [Self.run()])
        // And it is written as this version writes.
        let run = try store.beginRun(Self.run())
        var batch = FrameBatch(run: run, camera: "cam1", time: 6000, pts: 6)
        batch.tracks = [Self.row(4, start: 6000, end: 6000, label: "person", embedding: [0, 1, 0])]
        try store.write(batch)
        #expect(try store.track(camera: "cam1", track: 4)?.row == batch.tracks[0])
    }

    // A track's later frames update its one row (the camera and track id name it).
    @Test(arguments: StoreKind.allCases) func laterFramesUpdateTheRow(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let store = try test.open()
        let run = try store.beginRun(Self.run())
        var ids: Set<Int64> = []
        for (frame, label) in ["unknown", "car", "person"].enumerated() {
            var batch = FrameBatch(run: run, camera: "cam1", time: 1000 + Int64(frame), pts: Double(frame))
            batch.tracks = [Self.row(3, start: 1000, end: 1000 + Int64(frame), label: label, embedding: [0, 1, 0])]
            ids.formUnion(try store.write(batch).values)
        }
        let track = try #require(try store.track(camera: "cam1", track: 3))
        #expect(track.row.label == "person" && track.row.end == 1002 && track.row.start == 1000)
        #expect(try store.candidates(TrackFilter()).count == 1 && ids == [track.id])
    }

    // Filters by camera, time (a track seen in the window) and label, a later labeling's too;
    // ranking is by exact cosine, best first, with each hit's rank among all candidates; the
    // first pass's codes and the exact embeddings are the ones written.
    @Test(arguments: StoreKind.allCases) func filtersAndRanks(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let store = try test.open()
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

        let person = try #require(try store.track(camera: "cam1", track: 2))
        try store.saveLabeling(VocabularyRecord(digest: "v2", labels: ["pedestrian"], clipDigest: "c0ffee", created: 9000),
                               labels: [TrackLabel(id: person.id, label: "pedestrian", score: 0.7)])
        #expect(try tracks(TrackFilter(label: "pedestrian")) == [2])
        #expect(try store.track(camera: "cam1", track: 2)?.labelings == [Labeling(vocabulary: "v2", label: "pedestrian", score: 0.7)])

        let query: [Float] = [0.8, 0.6, 0]
        let hits = rankTracks(query, among: try store.candidates(TrackFilter()), limit: 2)
        let stored = try store.tracks(hits.map(\.id))
        #expect(stored.map(\.row.track) == [2, 1] && hits.map(\.rank) == [1, 2])
        #expect(abs(hits[0].score - 0.96) < 1e-6 && abs(hits[1].score - 0.8) < 1e-6)
        #expect(try store.embeddings(hits.map(\.id)).map(\.embedding) == [[0.6, 0.8, 0], [1, 0, 0]])

        let index = TrackIndex(dimension: 3)
        try store.codes(TrackFilter(camera: "cam1"), into: index)
        #expect(index.count == 2 && index.nearest(query, count: 1, threads: 1).map(\.id) == [person.id])
    }

    // A store of a newer schema is refused, naming what it found.
    @Test(arguments: StoreKind.allCases) func refusesANewerSchema(kind: StoreKind) throws {
        let test = try TestStore(kind)
        _ = try test.open()
        switch kind {
        case .sqlite:
            try runSQLite(test.location, "insert into grdb_migrations values ('v99')")
        case .postgres:
            try TestPostgres.psql(test.location, "INSERT INTO segwatch_migrations VALUES ('v99', 0)")
        }
        do {
            _ = try test.open()
            Issue.record("a newer store was opened")
        } catch let error as StoreError {
            guard case let .newerSchema(_, found, known) = error else { Issue.record("\(error)"); return }
            #expect(found == "v99" && known == StoreSchema.latest)
        }
    }

    // Another program's database is refused by name, and left as it was.
    @Test(arguments: StoreKind.allCases) func refusesAnotherProgramsDatabase(kind: StoreKind) throws {
        let test = try TestStore(kind)
        switch kind {
        case .sqlite:
            try FileManager.default.createDirectory(atPath: (test.location as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try runSQLite(test.location, "create table notes (x)")
        case .postgres:
            try TestPostgres.psql(test.location, "CREATE TABLE notes (x integer)")
        }
        do {
            _ = try test.open()
            Issue.record("another database was opened as a store")
        } catch {
            #expect("\(error)".contains("'notes'") && "\(error)".contains(kind == .sqlite ? "store.sqlite" : "segwatch_test_"), "\(error)")
        }
        switch kind {
        case .sqlite: #expect(try runSQLite(test.location, "select count(*) from sqlite_master") == "1")
        case .postgres:
            #expect(try TestPostgres.psql(test.location, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == "1")
        }
    }

    // Frame events, when kept: read back by camera and time window, oldest first; their own
    // retention deletes them and no track; a size limit with no track left deletes the oldest.
    @Test(arguments: StoreKind.allCases) func keepsFrameEvents(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let store = try test.open()
        for camera in ["cam1", "cam2"] {
            let run = try store.beginRun(Self.run(camera))
            for second in 1...5 {
                var batch = FrameBatch(run: run, camera: camera, time: Int64(second) * 1000, pts: Double(second))
                batch.frame = #"{"type":"frame","source":"\#(camera)","frame":\#(second),"pad":"\#(String(repeating: "é", count: 2000))"}"#
                if second == 1 { batch.tracks = [Self.row(1, start: 1000, end: 1000, label: "car", embedding: [1, 0, 0])] }
                try store.write(batch)
            }
        }
        func frames(_ filter: TrackFilter) throws -> [String] {
            try store.frames(filter, limit: 100).map { frame in
                let object = try JSONSerialization.jsonObject(with: Data(frame.line.utf8)) as! [String: Any]
                return "\(object["source"]!)/\(object["frame"]!)"
            }
        }
        #expect(try frames(TrackFilter(camera: "cam2", since: 2000, until: 4000)) == ["cam2/2", "cam2/3", "cam2/4"])
        #expect(try frames(TrackFilter()).count == 10 && store.frames(TrackFilter(), limit: 3).count == 3)
        #expect(try store.frames(TrackFilter(camera: "cam1"), limit: 1).first?.line.contains(String(repeating: "é", count: 2000)) == true)

        let pruned = try store.prune(before: nil, framesBefore: 3000, maxBytes: nil)
        let left = try frames(TrackFilter(camera: "cam1"))
        #expect(pruned.framesDeleted == 4 && pruned.tracksDeleted == 0 && left == ["cam1/3", "cam1/4", "cam1/5"])
        #expect(try store.candidates(TrackFilter()).count == 2)

        _ = try store.prune(before: 10_000, framesBefore: nil, maxBytes: nil)
        let kept = try frames(TrackFilter()).count
        #expect(try store.candidates(TrackFilter()).isEmpty && kept == 6)
        let capped = try store.prune(before: nil, framesBefore: nil, maxBytes: 1)
        let after = try frames(TrackFilter()).count
        #expect(capped.framesDeleted > 0 && after == 6 - capped.framesDeleted, "\(capped)")
    }

    // 2,000 tracks a second apart, each with an 8 KB thumbnail: by age, the tracks last seen
    // before the cut go with their thumbnails and the store shrinks; by size, the oldest go until
    // the store fits, the newest stay.
    @Test(arguments: StoreKind.allCases) func prunesByAgeAndBySize(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let store = try test.open()
        let run = try store.beginRun(Self.run())
        var generator = SplitMix(seed: 7)
        for start in stride(from: 0, to: 2000, by: 100) {
            var batch = FrameBatch(run: run, camera: "cam1", time: Int64(start + 99) * 1000, pts: Double(start))
            for t in start..<(start + 100) {
                batch.tracks.append(Self.row(t + 1, start: Int64(t) * 1000, end: Int64(t) * 1000 + 500, label: "car", embedding: [1, 0, 0]))
                batch.boxes.append(TrackBox(track: t + 1, box: [t, 0, 10, 10]))
                batch.thumbnails.append((t + 1, Thumbnail(format: "jpeg", data: Data((0..<8192).map { _ in UInt8(truncatingIfNeeded: generator.next()) }))))
            }
            try store.write(batch)
        }
        let first = try store.prune(before: 1_000_000, framesBefore: nil, maxBytes: nil)
        #expect(first.tracksDeleted == 1000 && first.bytesAfter < first.bytesBefore * 6 / 10, "\(first)")
        #expect(try store.track(camera: "cam1", track: 1000) == nil && store.track(camera: "cam1", track: 1001)?.thumbnail?.data.count == 8192)
        #expect(try store.candidates(TrackFilter()).count == 1000)
        if kind == .postgres {
            #expect(try TestPostgres.psql(test.location, "SELECT count(*) FROM thumbnails") == "1000")
            #expect(try TestPostgres.psql(test.location, "SELECT count(*) FROM track_boxes") == "1000")
        }

        let second = try store.prune(before: nil, framesBefore: nil, maxBytes: first.bytesAfter / 2)
        let left = try store.tracks(try store.candidates(TrackFilter()).map(\.id)).map(\.row.track).sorted()
        #expect(second.bytesAfter <= first.bytesAfter / 2 + 64 * 1024 && second.tracksDeleted == 1000 - left.count, "\(second)")
        #expect(left.count > 300 && left.count < 600 && left.last == 2000 && left == Array(left.first!...2000), "\(left.count) left")
    }
}

/// Runs `sql` on the SQLite file at `path` with Python's sqlite3 (another program's writes); the
/// first column of the first row it returns, if any.
@discardableResult
func runSQLite(_ path: String, _ sql: String) throws -> String {
    let script = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); r = c.execute(sys.argv[2]).fetchone(); c.commit(); print('' if r is None else r[0])"
    let result = try runProcess("/usr/bin/env", ["python3", "-c", script, path, sql])
    guard result.status == 0 else { throw TestPostgres.PSQLFailed(sql: sql, message: result.errorOutput) }
    return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite struct SQLiteStoreTests {
    // A file that is not a database at all is refused with its path.
    @Test func refusesAFileThatIsNotADatabase() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try "hello, not a database\n".write(toFile: folder.path("text.sqlite"), atomically: true, encoding: .utf8)
        #expect(throws: StoreError.self) { try SQLiteStore(path: folder.path("text.sqlite")) }
        do { _ = try SQLiteStore(path: folder.path("text.sqlite")) } catch { #expect("\(error)".contains("text.sqlite")) }
    }
}

@Suite struct PostgresStoreTests {
    // The URL forms a fleet uses; a password never shows in what errors print.
    @Test func readsItsURL() throws {
        let (configuration, shown) = try postgresConfiguration("postgres://cam%40host:s3cret@db.example:6543/fleet?sslmode=disable")
        #expect(configuration.username == "cam@host" && configuration.password == "s3cret" && configuration.database == "fleet")
        #expect(configuration.host == "db.example" && configuration.port == 6543 && shown == "postgres://cam%40host:***@db.example:6543/fleet?sslmode=disable")
        let (socket, _) = try postgresConfiguration("postgresql://me@/segwatch?host=/run/postgresql")
        #expect(socket.unixSocketPath == "/run/postgresql/.s.PGSQL.5432" && socket.database == "segwatch")
        #expect(throws: StoreError.self) { try postgresConfiguration("postgres://me@db/x?sslmode=sometimes") }
    }

    // A server that is not there: a clear error within the connect timeout, not a hang.
    @Test func anAbsentServerIsAnError() throws {
        let started = Date()
        do {
            _ = try PostgresStore(url: "postgres://segwatch:secret@127.0.0.1:\(freePort())/nothing")
            Issue.record("connected to nothing")
        } catch {
            #expect("\(error)".contains("cannot connect") && !"\(error)".contains("secret"), "\(error)")
        }
        #expect(Date().timeIntervalSince(started) < 10)
    }

    // The database goes away (new connections refused, its connections killed) and comes back:
    // the store's calls fail with a clear error while it is away, and work again once it is back,
    // on a new connection.
    @Test func reconnectsAfterALostConnection() throws {
        let test = try TestStore(.postgres)
        let store = try test.open()
        let run = try store.beginRun(SegmentStoreTests.run())
        let name = try #require(URLComponents(string: test.location)?.path.dropFirst())
        let server = try TestPostgres.serverURL()
        try TestPostgres.psql(server, "ALTER DATABASE \(name) ALLOW_CONNECTIONS false")
        try TestPostgres.psql(server, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(name)'")
        var batch = FrameBatch(run: run, camera: "cam1", time: 1000, pts: 1)
        batch.tracks = [SegmentStoreTests.row(1, start: 1000, end: 1000, label: "car", embedding: [1, 0, 0])]
        let failed = eventually(5, every: 0.1) {
            do { try store.write(batch); return false } catch { return "\(error)".contains(name) }
        }
        #expect(failed)
        try TestPostgres.psql(server, "ALTER DATABASE \(name) ALLOW_CONNECTIONS true")
        let written = eventually(2 * PostgresStore.reconnectDelay + 5, every: 0.2) { (try? store.write(batch)) != nil }
        #expect(written)
        #expect(try store.track(camera: "cam1", track: 1)?.row == batch.tracks[0])
    }
}
