// The embedded store: one SQLite file through GRDB, in WAL mode, so that a reader (search)
// never waits for the writer (a run) and a killed writer leaves the file as of its last commit.
import Foundation
import GRDB

public final class SQLiteStore: SegmentStore {
    public let path: String
    private let pool: DatabasePool

    /// Opens the store at `path`, creating it (and its folder) if needed, and brings its schema
    /// up to date (`upTo`: only so far, for the migration tests). A file that is not a store, or
    /// a store of a newer segwatch, is refused.
    public init(path: String, upTo: String? = nil) throws(StoreError) {
        self.path = path
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        // A reader and the writer of another process wait for each other's locks, not fail.
        configuration.busyMode = .timeout(10)
        configuration.label = "segwatch.store"
        // Pages freed by retention go back to the file system (`prune`); set before the first
        // table, so on a new store only.
        configuration.prepareDatabase { db in
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL") }
        }
        do {
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw .unavailable(store: path, reason: "cannot open it as a SQLite database: \(Self.reason(error))")
        }
        var migrator = DatabaseMigrator()
        for migration in StoreSchema.migrations {
            migrator.registerMigration(migration.name) { db in
                for statement in migration.statements { try db.execute(sql: SQLDialect.sqlite.sql(statement)) }
            }
        }
        do {
            let applied = try pool.read { db in try migrator.appliedIdentifiers(db) }
            let known = Set(StoreSchema.migrations.map(\.name))
            if let unknown = applied.subtracting(known).sorted().last {
                throw StoreError.newerSchema(store: path, found: unknown, known: StoreSchema.latest)
            }
            let tables = try pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
            if applied.isEmpty, let other = tables.first(where: { !$0.hasPrefix("sqlite_") && $0 != "grdb_migrations" }) {
                throw StoreError.unavailable(store: path, reason: "a SQLite database of something else (it has a table '\(other)' and no segwatch schema)")
            }
            if let upTo {
                if !applied.contains(upTo) { try migrator.migrate(pool, upTo: upTo) }
            } else {
                try migrator.migrate(pool)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .unavailable(store: path, reason: "cannot read or migrate its schema: \(Self.reason(error))")
        }
    }

    /// The migrations applied, in order.
    func appliedMigrations() throws(StoreError) -> [String] {
        let applied = try reading { db in try DatabaseMigrator().appliedIdentifiers(db) }
        return StoreSchema.migrations.map(\.name).filter(applied.contains)
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        return "\(error)"
    }

    private func writing<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try pool.write(body) } catch let error as StoreError { throw error } catch {
            throw .unavailable(store: path, reason: "cannot write: \(Self.reason(error))")
        }
    }

    private func reading<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try pool.read(body) } catch let error as StoreError { throw error } catch {
            throw .unavailable(store: path, reason: "cannot read: \(Self.reason(error))")
        }
    }

    /// The id of `camera`, made on first use.
    private func cameraID(_ db: Database, _ camera: String) throws -> Int64 {
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM cameras WHERE name = ?", arguments: [camera]) { return id }
        try db.execute(sql: "INSERT INTO cameras (name) VALUES (?)", arguments: [camera])
        return db.lastInsertedRowID
    }

    public func beginRun(_ run: RunRecord) throws(StoreError) -> Int64 {
        if run.job != nil { throw .mismatch(store: path, reason: "jobs (segwatch worker) need a PostgreSQL store") }
        let labels = jsonText(run.labels), templates = jsonText(run.templates)
        return try writing { db in
            let camera = try cameraID(db, run.camera)
            try db.execute(sql: """
                INSERT INTO runs (camera_id, started, clip, clip_digest, head_digest, vocabulary_digest, labels, templates, dimension)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [camera, run.started, run.clip, run.clipDigest, run.headDigest, run.vocabularyDigest, labels, templates,
                                 run.dimension])
            return db.lastInsertedRowID
        }
    }

    public func endRun(_ run: Int64, time: Int64) throws(StoreError) {
        try writing { db in try db.execute(sql: "UPDATE runs SET ended = ? WHERE id = ?", arguments: [time, run]) }
    }

    @discardableResult
    public func write(_ batch: FrameBatch) throws(StoreError) -> [Int: Int64] {
        guard !batch.isEmpty else { return [:] }
        if batch.job != nil { throw .mismatch(store: path, reason: "jobs (segwatch worker) need a PostgreSQL store") }
        return try writing { db in
            let camera = try cameraID(db, batch.camera)
            var ids: [Int: Int64] = [:]
            for row in batch.tracks {
                let code = TrackCode(row.embedding)
                ids[row.track] = try Int64.fetchOne(db, sql: """
                    INSERT INTO tracks (camera_id, run_id, track, start_time, end_time, start_pts, end_pts, ended, label, score,
                                        observations, embedding, code, code_scale, best_embedding, best_score, best_pts)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (camera_id, track) DO UPDATE SET
                        end_time = excluded.end_time, end_pts = excluded.end_pts, ended = excluded.ended, label = excluded.label,
                        score = excluded.score, observations = excluded.observations, embedding = excluded.embedding, code = excluded.code,
                        code_scale = excluded.code_scale, best_embedding = excluded.best_embedding, best_score = excluded.best_score,
                        best_pts = excluded.best_pts
                    RETURNING id
                    """, arguments: [camera, batch.run, row.track, row.start, row.end, row.startPts, row.endPts, row.ended ? 1 : 0, row.label,
                                     row.score, row.observations, embeddingBytes(row.embedding), code.values.withUnsafeBytes { Data($0) },
                                     code.scale, halfEmbeddingBytes(row.bestEmbedding), row.bestScore, row.bestPts])
            }
            func id(_ track: Int) throws -> Int64 {
                if let id = ids[track] { return id }
                guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM tracks WHERE camera_id = ? AND track = ?", arguments: [camera, track]) else {
                    throw StoreError.mismatch(store: path, reason: "track \(track) of \(batch.camera) is written before its row")
                }
                ids[track] = id
                return id
            }
            for change in batch.labelChanges {
                try db.execute(sql: "INSERT INTO track_labels (track_id, time, pts, label, previous_label) VALUES (?, ?, ?, ?, ?)",
                               arguments: [try id(change.track), batch.time, batch.pts, change.label, change.previous])
            }
            for box in batch.boxes where box.box.count == 4 {
                try db.execute(sql: "INSERT INTO track_boxes (track_id, time, pts, x, y, w, h) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               arguments: [try id(box.track), batch.time, batch.pts, box.box[0], box.box[1], box.box[2], box.box[3]])
            }
            for (track, thumbnail) in batch.thumbnails {
                try db.execute(sql: "INSERT OR REPLACE INTO thumbnails (track_id, format, data) VALUES (?, ?, ?)",
                               arguments: [try id(track), thumbnail.format, thumbnail.data])
            }
            if let frame = batch.frame {
                try db.execute(sql: "INSERT INTO frame_events (camera_id, run_id, time, pts, line) VALUES (?, ?, ?, ?, ?)",
                               arguments: [camera, batch.run, batch.time, batch.pts, frame])
            }
            let minute = batch.time / 60_000
            for (label, fraction) in batch.stuff {
                try db.execute(sql: """
                    INSERT INTO stuff_minutes (camera_id, minute, label, frames, coverage) VALUES (?, ?, ?, 1, ?)
                    ON CONFLICT (camera_id, minute, label) DO UPDATE SET frames = frames + 1, coverage = coverage + excluded.coverage
                    """, arguments: [camera, minute, label, fraction])
            }
            return ids
        }
    }

    public func candidates(_ filter: TrackFilter) throws(StoreError) -> [TrackEmbedding] {
        let (clause, arguments) = Self.whereClause(filter)
        return try reading { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT tracks.id, tracks.embedding FROM tracks JOIN cameras ON cameras.id = tracks.camera_id" + clause,
                                           arguments: arguments)
            var found: [TrackEmbedding] = []
            while let row = try rows.next() {
                guard let values = embeddingValues(row[1]) else { continue }
                found.append(TrackEmbedding(id: row[0], embedding: values))
            }
            return found
        }
    }

    public func codes(_ filter: TrackFilter, into index: TrackIndex) throws(StoreError) {
        let (clause, arguments) = Self.whereClause(filter)
        try reading { db in
            let rows = try Row.fetchCursor(db, sql: """
                SELECT tracks.id, tracks.code, tracks.code_scale FROM tracks JOIN cameras ON cameras.id = tracks.camera_id
                """ + clause, arguments: arguments)
            while let row = try rows.next() {
                let data: Data = row[1]
                index.upsert(id: row[0], code: TrackCode(values: data.withUnsafeBytes { Array($0.bindMemory(to: Int8.self)) }, scale: row[2]))
            }
        }
    }

    public func embeddings(_ ids: [Int64]) throws(StoreError) -> [TrackEmbedding] {
        try reading { db in
            let statement = try db.cachedStatement(sql: "SELECT embedding FROM tracks WHERE id = ?")
            return try ids.compactMap { id in
                guard let data = try Data.fetchOne(statement, arguments: [id]), let values = embeddingValues(data) else { return nil }
                return TrackEmbedding(id: id, embedding: values)
            }
        }
    }

    static func whereClause(_ filter: TrackFilter) -> (String, StatementArguments) {
        let (clause, values) = trackConditions(filter)
        return (clause, StatementArguments(values.map(\.databaseValue)))
    }

    public func frames(_ filter: TrackFilter, limit: Int) throws(StoreError) -> [StoredFrame] {
        let (clause, values) = frameConditions(filter)
        return try reading { db in
            try Row.fetchAll(db, sql: """
                SELECT frame_events.time, frame_events.line FROM frame_events JOIN cameras ON cameras.id = frame_events.camera_id\(clause)
                ORDER BY frame_events.time, frame_events.rowid LIMIT ?
                """, arguments: StatementArguments(values.map(\.databaseValue) + [limit.databaseValue])).map { StoredFrame(time: $0[0], line: $0[1]) }
        }
    }

    public func tracks(_ ids: [Int64]) throws(StoreError) -> [StoredTrack] {
        try reading { db in try ids.compactMap { try Self.storedTrack(db, id: $0) } }
    }

    public func thumbnail(_ id: Int64) throws(StoreError) -> Thumbnail? {
        try reading { db in try Self.thumbnail(db, id: id) }
    }

    private static func thumbnail(_ db: Database, id: Int64) throws -> Thumbnail? {
        try Row.fetchOne(db, sql: "SELECT format, data FROM thumbnails WHERE track_id = ?", arguments: [id]).map { Thumbnail(format: $0[0], data: $0[1]) }
    }

    public func track(camera: String, track: Int) throws(StoreError) -> StoredTrack? {
        try reading { db in
            guard let id = try Int64.fetchOne(db, sql: """
                SELECT tracks.id FROM tracks JOIN cameras ON cameras.id = tracks.camera_id WHERE cameras.name = ? AND tracks.track = ?
                """, arguments: [camera, track]) else { return nil }
            return try Self.storedTrack(db, id: id)
        }
    }

    private static func storedTrack(_ db: Database, id: Int64) throws -> StoredTrack? {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT cameras.name, tracks.* FROM tracks JOIN cameras ON cameras.id = tracks.camera_id WHERE tracks.id = ?
            """, arguments: [id]) else { return nil }
        let trackRow = TrackRow(track: row["track"], start: row["start_time"], end: row["end_time"], startPts: row["start_pts"],
                                endPts: row["end_pts"], ended: (row["ended"] as Int) != 0, label: row["label"], score: row["score"],
                                observations: row["observations"], embedding: embeddingValues(row["embedding"]) ?? [],
                                bestEmbedding: halfEmbeddingValues(row["best_embedding"]) ?? [], bestScore: row["best_score"], bestPts: row["best_pts"])
        let labels = try Row.fetchAll(db, sql: "SELECT label, previous_label FROM track_labels WHERE track_id = ? ORDER BY rowid", arguments: [id])
            .map { LabelChange(track: trackRow.track, label: $0[0], previous: $0[1]) }
        let boxes = try Row.fetchAll(db, sql: "SELECT x, y, w, h FROM track_boxes WHERE track_id = ? ORDER BY rowid", arguments: [id])
            .map { [$0[0], $0[1], $0[2], $0[3]] as [Int] }
        let thumbnail = try thumbnail(db, id: id)
        let labelings = try Row.fetchAll(db, sql: """
            SELECT labelings.vocabulary, labelings.label, labelings.score FROM labelings JOIN vocabularies ON vocabularies.digest = labelings.vocabulary
            WHERE labelings.track_id = ? ORDER BY vocabularies.created, vocabularies.digest
            """, arguments: [id]).map { Labeling(vocabulary: $0[0], label: $0[1], score: $0[2]) }
        return StoredTrack(id: id, camera: row[0], run: row["run_id"], row: trackRow, labelHistory: labels, boxes: boxes, thumbnail: thumbnail,
                           labelings: labelings)
    }

    public func saveLabeling(_ vocabulary: VocabularyRecord, labels: [TrackLabel]) throws(StoreError) {
        try writing { db in
            try db.execute(sql: """
                INSERT INTO vocabularies (digest, labels, clip_digest, created) VALUES (?, ?, ?, ?)
                ON CONFLICT (digest) DO NOTHING
                """, arguments: [vocabulary.digest, jsonText(vocabulary.labels), vocabulary.clipDigest, vocabulary.created])
            for label in labels {
                try db.execute(sql: """
                    INSERT INTO labelings (track_id, vocabulary, label, score) VALUES (?, ?, ?, ?)
                    ON CONFLICT (track_id, vocabulary) DO UPDATE SET label = excluded.label, score = excluded.score
                    """, arguments: [label.id, vocabulary.digest, label.label, label.score])
            }
        }
    }

    /// The bytes the store's pages take (its file, less the free pages).
    private func usedBytes(_ db: Database) throws -> Int64 {
        let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0, free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
        return (pages - free) * (try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096)
    }

    public func prune(before: Int64?, framesBefore: Int64?, maxBytes: Int64?) throws(StoreError) -> PruneReport {
        var report = PruneReport()
        report.bytesBefore = fileBytes()
        try writing { db in
            if let before {
                try db.execute(sql: "DELETE FROM tracks WHERE end_time < ?", arguments: [before])
                report.tracksDeleted += db.changesCount
                try db.execute(sql: "DELETE FROM stuff_minutes WHERE minute < ?", arguments: [before / 60_000])
            }
            if let framesBefore {
                try db.execute(sql: "DELETE FROM frame_events WHERE time < ?", arguments: [framesBefore])
                report.framesDeleted += db.changesCount
            }
        }
        if let maxBytes {
            // The oldest tenth of the tracks at a time (and what is older than the oldest left),
            // or of the frame events when no track is left, until the pages in use fit.
            for _ in 0..<64 {
                let deleted = try writing { db -> (tracks: Int, frames: Int) in
                    guard try usedBytes(db) > maxBytes else { return (0, 0) }
                    let tracks = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tracks") ?? 0
                    if tracks == 0 {
                        let frames = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM frame_events") ?? 0
                        try db.execute(sql: "DELETE FROM frame_events WHERE rowid IN (SELECT rowid FROM frame_events ORDER BY time LIMIT ?)",
                                       arguments: [max(1, frames / 10)])
                        return (0, db.changesCount)
                    }
                    try db.execute(sql: "DELETE FROM tracks WHERE id IN (SELECT id FROM tracks ORDER BY end_time, id LIMIT ?)",
                                   arguments: [max(1, tracks / 10)])
                    let deleted = db.changesCount
                    var frames = 0
                    if let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(end_time) FROM tracks") {
                        try db.execute(sql: "DELETE FROM stuff_minutes WHERE minute < ?", arguments: [oldest / 60_000])
                        try db.execute(sql: "DELETE FROM frame_events WHERE time < ?", arguments: [oldest])
                        frames = db.changesCount
                    }
                    return (deleted, frames)
                }
                guard deleted.tracks + deleted.frames > 0 else { break }
                report.tracksDeleted += deleted.tracks
                report.framesDeleted += deleted.frames
            }
        }
        do {
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA incremental_vacuum")
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        } catch {
            throw .unavailable(store: path, reason: "cannot give the freed space back: \(Self.reason(error))")
        }
        report.bytesAfter = fileBytes()
        return report
    }

    /// The store's files (the database and its write-ahead log) on disk.
    private func fileBytes() -> Int64 {
        [path, path + "-wal"].reduce(0) { total, file in
            total + ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64) ?? 0)
        }
    }

    public func runs() throws(StoreError) -> [StoredRun] {
        try reading { db in
            try Row.fetchAll(db, sql: "SELECT runs.*, cameras.name AS camera FROM runs JOIN cameras ON cameras.id = runs.camera_id ORDER BY runs.id")
                .map { row in
                    let record = RunRecord(camera: row["camera"], started: row["started"], clip: row["clip"], clipDigest: row["clip_digest"],
                                           headDigest: row["head_digest"], vocabularyDigest: row["vocabulary_digest"],
                                           labels: jsonStrings(row["labels"]), templates: jsonStrings(row["templates"]), dimension: row["dimension"])
                    return StoredRun(id: row["id"], record: record, ended: row["ended"])
                }
        }
    }
}

extension SQLValue {
    var databaseValue: DatabaseValue {
        switch self {
        case let .text(text): return text.databaseValue
        case let .integer(integer): return integer.databaseValue
        }
    }
}
