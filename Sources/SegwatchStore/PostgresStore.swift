// The fleet's store: one PostgreSQL database that many hosts write to and search, through
// postgres-nio. The schema is `StoreSchema`'s, as in SQLite; embeddings are bytes scored by
// segwatch (no extension: Debian 12 packages no pgvector).
//
// `SegmentStore` is synchronous (a camera's runner thread writes, a search reads), so each call
// waits on postgres-nio's futures; they complete on NIO's event loops, never on the caller's
// thread, so waiting cannot deadlock. One connection, one call at a time: a frame's writes are
// a handful of statements, and a lost connection is made again by the next call (at most every
// few seconds, so that a camera's frames do not each wait for a connect timeout).
import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO

public final class PostgresStore: SegmentStore, @unchecked Sendable {
    /// The URL without its password, as errors name the store.
    public let location: String
    private let configuration: PostgresConnection.Configuration
    private let logger = Logger(label: "segwatch.store.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
    /// Guards `connection` and `retryAfter`, and makes each call (a transaction) one at a time.
    private let lock = NSLock()
    private var connection: PostgresConnection?
    private var connections = 0
    private var retryAfter = Date.distantPast
    /// Camera ids by name, guarded by `lock` (every transaction holds it).
    private var cameraIDs: [String: Int64] = [:]
    /// How long after a failed connect the next call fails at once rather than trying again.
    static let reconnectDelay: TimeInterval = 3

    /// Connects to the database at `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`, with
    /// `?sslmode=require` for TLS, or `?host=/socket/folder` for a Unix socket) and brings its
    /// schema up to date (`upTo`: only so far, for the migration tests). A database that holds
    /// other tables and no segwatch schema, or a newer schema, is refused.
    public init(url: String, upTo: String? = nil) throws(StoreError) {
        (configuration, location) = try postgresConfiguration(url)
        try migrate(upTo: upTo)
    }

    deinit {
        try? connection?.close().wait()
    }

    // MARK: Connection and transactions

    private func connected() throws(StoreError) -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        guard Date() >= retryAfter else {
            throw .unavailable(store: location, reason: "the connection is lost; trying again within \(Int(Self.reconnectDelay)) s")
        }
        do {
            connections += 1
            let made = try PostgresConnection.connect(on: PostgresConnection.defaultEventLoopGroup.any(), configuration: configuration,
                                                      id: connections, logger: logger).wait()
            connection = made
            return made
        } catch {
            retryAfter = Date().addingTimeInterval(Self.reconnectDelay)
            throw .unavailable(store: location, reason: "cannot connect: \(postgresReason(error))")
        }
    }

    /// `body` in one transaction on the connection: committed when it returns, rolled back when it
    /// throws. `what` says what failed in the error.
    @discardableResult
    func transaction<T>(_ what: String, _ body: (PostgresSession) throws -> T) throws(StoreError) -> T {
        lock.lock()
        defer { lock.unlock() }
        let session = PostgresSession(connection: try connected(), logger: logger)
        do {
            try session.execute("BEGIN")
            let value = try body(session)
            try session.execute("COMMIT")
            return value
        } catch {
            _ = try? session.execute("ROLLBACK")
            if let error = error as? StoreError { throw error }
            throw .unavailable(store: location, reason: "cannot \(what): \(postgresReason(error))")
        }
    }

    /// `body` outside a transaction (VACUUM refuses to run inside one).
    @discardableResult
    func outsideTransaction<T>(_ what: String, _ body: (PostgresSession) throws -> T) throws(StoreError) -> T {
        lock.lock()
        defer { lock.unlock() }
        let session = PostgresSession(connection: try connected(), logger: logger)
        do { return try body(session) } catch {
            throw .unavailable(store: location, reason: "cannot \(what): \(postgresReason(error))")
        }
    }

    // MARK: Schema

    private func migrate(upTo: String?) throws(StoreError) {
        try transaction("read or migrate its schema") { session in
            // Hosts of a fleet that start together migrate one at a time.
            try session.execute("SELECT pg_advisory_xact_lock(?)", [Self.migrationLock])
            let tables = try session.rows("SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()")
                .map { try $0.decode(String.self) }
            var applied: Set<String> = []
            if tables.contains("segwatch_migrations") {
                applied = Set(try session.rows("SELECT name FROM segwatch_migrations").map { try $0.decode(String.self) })
            } else if let other = tables.sorted().first {
                throw StoreError.unavailable(store: location, reason: "a database of something else (it has a table '\(other)' and no segwatch schema)")
            } else {
                try session.execute("CREATE TABLE segwatch_migrations (name TEXT PRIMARY KEY, applied BIGINT NOT NULL)")
            }
            let known = Set(StoreSchema.migrations.map(\.name))
            if let unknown = applied.subtracting(known).sorted().last {
                throw StoreError.newerSchema(store: location, found: unknown, known: StoreSchema.latest)
            }
            for migration in StoreSchema.migrations {
                if !applied.contains(migration.name) {
                    for statement in migration.statements { try session.execute(SQLDialect.postgres.sql(statement)) }
                    try session.execute("INSERT INTO segwatch_migrations (name, applied) VALUES (?, ?)", [migration.name, storeNow()])
                }
                if migration.name == upTo { break }
            }
        }
    }

    /// The advisory lock of migrations: "segwatch" in ASCII.
    private static let migrationLock: Int64 = 0x7365_6777_6174_6368

    /// The migrations applied, in order.
    func appliedMigrations() throws(StoreError) -> [String] {
        let applied = try transaction("read its schema") { session in
            Set(try session.rows("SELECT name FROM segwatch_migrations").map { try $0.decode(String.self) })
        }
        return StoreSchema.migrations.map(\.name).filter(applied.contains)
    }

    // MARK: Writing

    /// The id of `camera`, made on first use (kept: a camera's row stays until it is removed).
    private func cameraID(_ session: PostgresSession, _ camera: String) throws -> Int64 {
        if let id = cameraIDs[camera] { return id }
        // ON CONFLICT: another host may add the same camera at the same moment.
        try session.execute("INSERT INTO cameras (name) VALUES (?) ON CONFLICT (name) DO NOTHING", [camera])
        let id = try session.rows("SELECT id FROM cameras WHERE name = ?", [camera])[0].decode(Int64.self)
        cameraIDs[camera] = id
        return id
    }

    public func beginRun(_ run: RunRecord) throws(StoreError) -> Int64 {
        try transaction("register a run") { session in
            if let job = run.job { try holdJob(session, job) }
            let camera = try cameraID(session, run.camera)
            return try session.rows("""
                INSERT INTO runs (camera_id, started, clip, clip_digest, head_digest, vocabulary_digest, labels, templates, dimension, job_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
                """, [camera, run.started, run.clip, run.clipDigest, run.headDigest, run.vocabularyDigest, jsonText(run.labels),
                      jsonText(run.templates), run.dimension, run.job?.job])[0].decode(Int64.self)
        }
    }

    public func endRun(_ run: Int64, time: Int64) throws(StoreError) {
        try transaction("end a run") { session in try session.execute("UPDATE runs SET ended = ? WHERE id = ?", [time, run]) }
    }

    /// One frame in a handful of statements, whatever its size: each table's rows go as arrays
    /// (`unnest`), and the tracks' ids are joined in SQL, so that a frame costs a few round trips
    /// to the server, not one per row.
    @discardableResult
    public func write(_ batch: FrameBatch) throws(StoreError) -> [Int: Int64] {
        guard !batch.isEmpty else { return [:] }
        return try transaction("write a frame") { session in
            do {
                return try write(batch, session)
            } catch {
                // The camera may have been removed by another host meanwhile.
                cameraIDs[batch.camera] = nil
                throw error
            }
        }
    }

    private func write(_ batch: FrameBatch, _ session: PostgresSession) throws -> [Int: Int64] {
        if let job = batch.job { try holdJob(session, job) }
        let camera = try cameraID(session, batch.camera)
        var ids: [Int: Int64] = [:]
        let rows = batch.tracks
        if !rows.isEmpty {
            let codes = rows.map { TrackCode($0.embedding) }
            let returned = try session.rows("""
                INSERT INTO tracks (camera_id, run_id, track, start_time, end_time, start_pts, end_pts, ended, label, score,
                                    observations, embedding, code, code_scale, best_embedding, best_score, best_pts)
                SELECT ?, ?, * FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::float8[], ?::float8[], ?::int[], ?::text[],
                                           ?::float8[], ?::int[], ?::bytea[], ?::bytea[], ?::float8[], ?::bytea[], ?::float8[], ?::float8[])
                ON CONFLICT (camera_id, track) DO UPDATE SET
                    end_time = excluded.end_time, end_pts = excluded.end_pts, ended = excluded.ended, label = excluded.label,
                    score = excluded.score, observations = excluded.observations, embedding = excluded.embedding, code = excluded.code,
                    code_scale = excluded.code_scale, best_embedding = excluded.best_embedding, best_score = excluded.best_score,
                    best_pts = excluded.best_pts
                RETURNING track, id
                """, [camera, batch.run, rows.map(\.track), rows.map(\.start), rows.map(\.end), rows.map(\.startPts), rows.map(\.endPts),
                      rows.map { $0.ended ? 1 : 0 }, rows.map(\.label), rows.map(\.score), rows.map(\.observations),
                      rows.map { ByteBuffer(bytes: embeddingBytes($0.embedding)) }, codes.map { code in code.values.withUnsafeBytes { ByteBuffer(bytes: $0) } },
                      codes.map { Double($0.scale) }, rows.map { ByteBuffer(bytes: halfEmbeddingBytes($0.bestEmbedding)) }, rows.map(\.bestScore),
                      rows.map(\.bestPts)])
            for row in returned {
                let (track, id) = try row.decode((Int, Int64).self)
                ids[track] = id
            }
        }
        /// Rows of the frame's tracks, with their ids joined from `tracks`: all of them, or the
        /// batch refers to a track it does not hold.
        func insertJoined(_ what: String, _ count: Int, _ sql: String, _ values: [PostgresSession.Value]) throws {
            guard count > 0 else { return }
            let inserted = try session.execute(sql, values)
            guard inserted == count else {
                throw StoreError.mismatch(store: location, reason: "\(count - inserted) of the frame's \(what) belong to tracks of \(batch.camera) not stored")
            }
        }
        let changes = batch.labelChanges
        try insertJoined("label changes", changes.count, """
            INSERT INTO track_labels (track_id, time, pts, label, previous_label)
            SELECT tracks.id, ?, ?, c.label, NULLIF(c.previous, '')
            FROM unnest(?::bigint[], ?::text[], ?::text[]) AS c(track, label, previous) JOIN tracks ON tracks.camera_id = ? AND tracks.track = c.track
            """, [batch.time, batch.pts, changes.map(\.track), changes.map(\.label), changes.map { $0.previous ?? "" }, camera])
        let boxes = batch.boxes.filter { $0.box.count == 4 }
        try insertJoined("boxes", boxes.count, """
            INSERT INTO track_boxes (track_id, time, pts, x, y, w, h)
            SELECT tracks.id, ?, ?, b.x, b.y, b.w, b.h
            FROM unnest(?::bigint[], ?::int[], ?::int[], ?::int[], ?::int[]) AS b(track, x, y, w, h)
            JOIN tracks ON tracks.camera_id = ? AND tracks.track = b.track
            """, [batch.time, batch.pts, boxes.map(\.track), boxes.map { $0.box[0] }, boxes.map { $0.box[1] }, boxes.map { $0.box[2] },
                  boxes.map { $0.box[3] }, camera])
        // One thumbnail per track (the last a frame made).
        var thumbnails: [Int: Thumbnail] = [:]
        for (track, thumbnail) in batch.thumbnails { thumbnails[track] = thumbnail }
        try insertJoined("thumbnails", thumbnails.count, """
            INSERT INTO thumbnails (track_id, format, data)
            SELECT tracks.id, t.format, t.data FROM unnest(?::bigint[], ?::text[], ?::bytea[]) AS t(track, format, data)
            JOIN tracks ON tracks.camera_id = ? AND tracks.track = t.track
            ON CONFLICT (track_id) DO UPDATE SET format = excluded.format, data = excluded.data
            """, [Array(thumbnails.keys), thumbnails.values.map(\.format), thumbnails.values.map { ByteBuffer(bytes: $0.data) }, camera])
        if let frame = batch.frame {
            try session.execute("INSERT INTO frame_events (camera_id, run_id, time, pts, line) VALUES (?, ?, ?, ?, ?)",
                                [camera, batch.run, batch.time, batch.pts, frame])
        }
        // A label once per minute row (an upsert may not touch a row twice).
        var stuff: [String: Double] = [:]
        for (label, fraction) in batch.stuff { stuff[label, default: 0] += fraction }
        if !stuff.isEmpty {
            try session.execute("""
                INSERT INTO stuff_minutes (camera_id, minute, label, frames, coverage)
                SELECT ?, ?, s.label, 1, s.coverage FROM unnest(?::text[], ?::float8[]) AS s(label, coverage)
                ON CONFLICT (camera_id, minute, label) DO UPDATE SET frames = stuff_minutes.frames + 1,
                    coverage = stuff_minutes.coverage + excluded.coverage
                """, [camera, batch.time / 60_000, Array(stuff.keys), Array(stuff.values)])
        }
        return ids
    }

    public func saveLabeling(_ vocabulary: VocabularyRecord, labels: [TrackLabel]) throws(StoreError) {
        try transaction("save a labeling") { session in
            try session.execute("""
                INSERT INTO vocabularies (digest, labels, clip_digest, created) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING
                """, [vocabulary.digest, jsonText(vocabulary.labels), vocabulary.clipDigest, vocabulary.created])
            for label in labels {
                try session.execute("""
                    INSERT INTO labelings (track_id, vocabulary, label, score) VALUES (?, ?, ?, ?)
                    ON CONFLICT (track_id, vocabulary) DO UPDATE SET label = excluded.label, score = excluded.score
                    """, [label.id, vocabulary.digest, label.label, label.score])
            }
        }
    }

    // MARK: Reading

    public func candidates(_ filter: TrackFilter) throws(StoreError) -> [TrackEmbedding] {
        let (clause, values) = trackWhereClause(filter)
        return try transaction("read tracks") { session in
            let found = RowCollector<TrackEmbedding>()
            try session.each("SELECT tracks.id, tracks.embedding FROM tracks JOIN cameras ON cameras.id = tracks.camera_id" + clause, values) { row in
                let (id, data) = try row.decode((Int64, Data).self)
                if let values = embeddingValues(data) { found.append(TrackEmbedding(id: id, embedding: values)) }
            }
            return found.values
        }
    }

    public func codes(_ filter: TrackFilter, into index: TrackIndex) throws(StoreError) {
        let (clause, values) = trackWhereClause(filter)
        try transaction("read track codes") { session in
            try session.each("""
                SELECT tracks.id, tracks.code, tracks.code_scale FROM tracks JOIN cameras ON cameras.id = tracks.camera_id
                """ + clause, values) { row in
                let (id, data, scale) = try row.decode((Int64, Data, Double).self)
                index.upsert(id: id, code: TrackCode(values: data.withUnsafeBytes { Array($0.bindMemory(to: Int8.self)) }, scale: Float(scale)))
            }
        }
    }

    public func embeddings(_ ids: [Int64]) throws(StoreError) -> [TrackEmbedding] {
        guard !ids.isEmpty else { return [] }
        return try transaction("read embeddings") { session in
            var byID: [Int64: [Float]] = [:]
            for row in try session.rows("SELECT id, embedding FROM tracks WHERE id = ANY(?)", [ids]) {
                let (id, data) = try row.decode((Int64, Data).self)
                byID[id] = embeddingValues(data)
            }
            return ids.compactMap { id in byID[id].map { TrackEmbedding(id: id, embedding: $0) } }
        }
    }

    public func tracks(_ ids: [Int64]) throws(StoreError) -> [StoredTrack] {
        try transaction("read tracks") { session in try ids.compactMap { try storedTrack(session, id: $0) } }
    }

    public func thumbnail(_ id: Int64) throws(StoreError) -> Thumbnail? {
        try transaction("read a thumbnail") { session in try thumbnail(session, id: id) }
    }

    private func thumbnail(_ session: PostgresSession, id: Int64) throws -> Thumbnail? {
        try session.rows("SELECT format, data FROM thumbnails WHERE track_id = ?", [id]).first.map { row in
            let (format, data) = try row.decode((String, Data).self)
            return Thumbnail(format: format, data: data)
        }
    }

    public func track(camera: String, track: Int) throws(StoreError) -> StoredTrack? {
        try transaction("read a track") { session in
            guard let row = try session.rows("""
                SELECT tracks.id FROM tracks JOIN cameras ON cameras.id = tracks.camera_id WHERE cameras.name = ? AND tracks.track = ?
                """, [camera, track]).first else { return nil }
            return try storedTrack(session, id: try row.decode(Int64.self))
        }
    }

    private func storedTrack(_ session: PostgresSession, id: Int64) throws -> StoredTrack? {
        guard let row = try session.rows("""
            SELECT cameras.name, tracks.run_id, tracks.track, tracks.start_time, tracks.end_time, tracks.start_pts, tracks.end_pts,
                   tracks.ended, tracks.label, tracks.score, tracks.observations, tracks.embedding, tracks.best_embedding,
                   tracks.best_score, tracks.best_pts
            FROM tracks JOIN cameras ON cameras.id = tracks.camera_id WHERE tracks.id = ?
            """, [id]).first else { return nil }
        let columns = row.makeRandomAccess()
        func column<T: PostgresDecodable>(_ index: Int, _ type: T.Type = T.self) throws -> T { try columns[index].decode(T.self) }
        let trackRow = TrackRow(track: try column(2), start: try column(3), end: try column(4), startPts: try column(5), endPts: try column(6),
                                ended: try column(7, Int.self) != 0, label: try column(8), score: try column(9), observations: try column(10),
                                embedding: embeddingValues(try column(11)) ?? [], bestEmbedding: halfEmbeddingValues(try column(12)) ?? [],
                                bestScore: try column(13), bestPts: try column(14))
        // Within a track, one label change and one box per frame: time, then pts, is the order written.
        let labels = try session.rows("SELECT label, previous_label FROM track_labels WHERE track_id = ? ORDER BY time, pts", [id]).map { row in
            let (label, previous) = try row.decode((String, String?).self)
            return LabelChange(track: trackRow.track, label: label, previous: previous)
        }
        let boxes = try session.rows("SELECT x, y, w, h FROM track_boxes WHERE track_id = ? ORDER BY time, pts", [id]).map { row in
            let (x, y, w, h) = try row.decode((Int, Int, Int, Int).self)
            return [x, y, w, h]
        }
        let labelings = try session.rows("""
            SELECT labelings.vocabulary, labelings.label, labelings.score FROM labelings JOIN vocabularies ON vocabularies.digest = labelings.vocabulary
            WHERE labelings.track_id = ? ORDER BY vocabularies.created, vocabularies.digest
            """, [id]).map { row in
            let (vocabulary, label, score) = try row.decode((String, String, Double).self)
            return Labeling(vocabulary: vocabulary, label: label, score: score)
        }
        return StoredTrack(id: id, camera: try column(0), run: try column(1), row: trackRow, labelHistory: labels, boxes: boxes,
                           thumbnail: try thumbnail(session, id: id), labelings: labelings)
    }

    public func runs() throws(StoreError) -> [StoredRun] {
        try transaction("read runs") { session in
            try session.rows("""
                SELECT runs.id, cameras.name, runs.started, runs.ended, runs.clip, runs.clip_digest, runs.head_digest, runs.vocabulary_digest,
                       runs.labels, runs.templates, runs.dimension
                FROM runs JOIN cameras ON cameras.id = runs.camera_id ORDER BY runs.id
                """).map { row in
                let columns = row.makeRandomAccess()
                let record = RunRecord(camera: try columns[1].decode(String.self), started: try columns[2].decode(Int64.self),
                                       clip: try columns[4].decode(String.self), clipDigest: try columns[5].decode(String.self),
                                       headDigest: try columns[6].decode(String?.self), vocabularyDigest: try columns[7].decode(String.self),
                                       labels: jsonStrings(try columns[8].decode(String.self)),
                                       templates: jsonStrings(try columns[9].decode(String.self)), dimension: try columns[10].decode(Int.self))
                return StoredRun(id: try columns[0].decode(Int64.self), record: record, ended: try columns[3].decode(Int64?.self))
            }
        }
    }

    /// Deletes every run and track of `camera`, and the camera; the tracks deleted.
    public func removeCamera(_ camera: String) throws(StoreError) -> Int {
        try transaction("remove a camera") { session in
            let deleted = try session.execute("DELETE FROM tracks WHERE camera_id IN (SELECT id FROM cameras WHERE name = ?)", [camera])
            try session.execute("DELETE FROM stuff_minutes WHERE camera_id IN (SELECT id FROM cameras WHERE name = ?)", [camera])
            try session.execute("DELETE FROM runs WHERE camera_id IN (SELECT id FROM cameras WHERE name = ?)", [camera])
            try session.execute("DELETE FROM cameras WHERE name = ?", [camera])
            cameraIDs[camera] = nil
            return deleted
        }
    }

    // MARK: Retention

    /// The bytes the store's rows take: their stored payloads (embeddings, codes, thumbnails) and
    /// a fixed cost per row for the rest. PostgreSQL keeps the pages that VACUUM frees for new
    /// rows rather than giving them back, so the tables' sizes on disk do not fall after a
    /// deletion; what the rows take does, and that is what a size limit bounds.
    private func liveBytes(_ session: PostgresSession) throws -> Int64 {
        try session.rows("""
            SELECT (SELECT COALESCE(SUM(octet_length(embedding) + octet_length(code) + octet_length(best_embedding) + 160), 0) FROM tracks)
                 + (SELECT COALESCE(SUM(octet_length(data) + 40), 0) FROM thumbnails)
                 + (SELECT COUNT(*) * 64 FROM track_boxes) + (SELECT COUNT(*) * 80 FROM track_labels)
                 + (SELECT COUNT(*) * 64 FROM stuff_minutes) + (SELECT COUNT(*) * 64 FROM labelings)
                 + (SELECT COALESCE(SUM(octet_length(line) + 48), 0) FROM frame_events)
            """)[0].decode(Int64.self)
    }

    public func prune(before: Int64?, framesBefore: Int64?, maxBytes: Int64?) throws(StoreError) -> PruneReport {
        var report = PruneReport()
        try transaction("apply retention") { session in
            report.bytesBefore = try liveBytes(session)
            if let before {
                report.tracksDeleted += try session.execute("DELETE FROM tracks WHERE end_time < ?", [before])
                try session.execute("DELETE FROM stuff_minutes WHERE minute < ?", [before / 60_000])
            }
            if let framesBefore {
                report.framesDeleted += try session.execute("DELETE FROM frame_events WHERE time < ?", [framesBefore])
            }
            if let maxBytes {
                let bytes = try liveBytes(session)
                let tracks = try session.rows("SELECT COUNT(*) FROM tracks")[0].decode(Int64.self)
                let frames = try session.rows("SELECT COUNT(*) FROM frame_events")[0].decode(Int64.self)
                // The oldest rows, as many as the excess takes at their average size: the tracks
                // (and the frame events and stuff older than the oldest left), or the frame
                // events when no track is left.
                let excess = bytes > maxBytes ? Double(bytes - maxBytes) / Double(bytes) : 0
                if excess > 0, tracks > 0 {
                    report.tracksDeleted += try session.execute("DELETE FROM tracks WHERE id IN (SELECT id FROM tracks ORDER BY end_time, id LIMIT ?)",
                                                                [max(1, Int64((Double(tracks) * excess).rounded(.up)))])
                    if let oldest = try session.rows("SELECT MIN(end_time) FROM tracks")[0].decode(Int64?.self) {
                        try session.execute("DELETE FROM stuff_minutes WHERE minute < ?", [oldest / 60_000])
                        report.framesDeleted += try session.execute("DELETE FROM frame_events WHERE time < ?", [oldest])
                    }
                } else if excess > 0, frames > 0 {
                    report.framesDeleted += try session.execute("""
                        DELETE FROM frame_events WHERE ctid IN (SELECT ctid FROM frame_events ORDER BY time LIMIT ?)
                        """, [max(1, Int64((Double(frames) * excess).rounded(.up)))])
                }
            }
            report.bytesAfter = try liveBytes(session)
        }
        if report.tracksDeleted + report.framesDeleted > 0 {
            // Marks the deleted rows' space free for the rows to come.
            try outsideTransaction("reclaim the freed space") { session in
                try session.execute("VACUUM tracks, track_labels, track_boxes, thumbnails, stuff_minutes, labelings, frame_events")
            }
        }
        return report
    }

    public func frames(_ filter: TrackFilter, limit: Int) throws(StoreError) -> [StoredFrame] {
        let (clause, values) = frameConditions(filter)
        return try transaction("read frame events") { session in
            try session.rows("""
                SELECT frame_events.time, frame_events.line FROM frame_events JOIN cameras ON cameras.id = frame_events.camera_id\(clause)
                ORDER BY frame_events.time, frame_events.pts LIMIT ?
                """, values.map(\.postgresValue) + [limit]).map { row in
                let (time, line) = try row.decode((Int64, String).self)
                return StoredFrame(time: time, line: line)
            }
        }
    }
}

/// A transaction's connection: statements with `?` placeholders and their values, waited for.
struct PostgresSession {
    let connection: PostgresConnection
    let logger: Logger

    typealias Value = (any PostgresThrowingDynamicTypeEncodable)?

    private func query(_ sql: String, _ values: [Value]) throws -> PostgresQuery {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            if let value { try bindings.append(value) } else { bindings.appendNull() }
        }
        var text = "", number = 0
        for character in sql {
            if character == "?" {
                number += 1
                text += "$\(number)"
            } else {
                text.append(character)
            }
        }
        return PostgresQuery(unsafeSQL: text, binds: bindings)
    }

    /// Runs a statement; the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ values: [Value] = []) throws -> Int {
        try connection.query(try query(sql, values), logger: logger).wait().metadata.rows ?? 0
    }

    func rows(_ sql: String, _ values: [Value] = []) throws -> [PostgresRow] {
        Array(try connection.query(try query(sql, values), logger: logger).wait())
    }

    /// Each row as it arrives, for results too large to hold twice (a million tracks' codes).
    func each(_ sql: String, _ values: [Value] = [], _ body: @escaping @Sendable (PostgresRow) throws -> Void) throws {
        _ = try connection.query(try query(sql, values), logger: logger, body).wait()
    }
}

/// Rows gathered by a query's row callback, which runs on the connection's event loop.
private final class RowCollector<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [T] = []

    func append(_ value: T) { lock.withLock { collected.append(value) } }
    var values: [T] { lock.withLock { collected } }
}

/// The WHERE clause of `filter` (`trackConditions`) with its values bound.
private func trackWhereClause(_ filter: TrackFilter) -> (String, [PostgresSession.Value]) {
    let (clause, values) = trackConditions(filter)
    return (clause, values.map(\.postgresValue))
}

extension SQLValue {
    var postgresValue: PostgresSession.Value {
        switch self {
        case let .text(text): return text
        case let .integer(integer): return integer
        }
    }
}

/// The connection settings of a `postgres://` URL, and the URL as errors show it (its password
/// hidden).
func postgresConfiguration(_ url: String) throws(StoreError) -> (PostgresConnection.Configuration, String) {
    let shown = url.replacingOccurrences(of: #"(://[^:/@]*:)[^@]*@"#, with: "$1***@", options: .regularExpression)
    guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? "") else {
        throw .unavailable(store: shown, reason: "not a PostgreSQL URL: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")
    }
    let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
    let user = components.percentEncodedUser?.removingPercentEncoding ?? query["user"] ?? ProcessInfo.processInfo.environment["USER"] ?? "postgres"
    let password = components.percentEncodedPassword?.removingPercentEncoding ?? query["password"]
    let path = components.percentEncodedPath.removingPercentEncoding ?? ""
    let database = path.hasPrefix("/") && path.count > 1 ? String(path.dropFirst()) : user
    let port = components.port ?? query["port"].flatMap { Int($0) } ?? 5432
    if let socketFolder = query["host"], socketFolder.hasPrefix("/") {
        return (.init(unixSocketPath: "\(socketFolder)/.s.PGSQL.\(port)", username: user, password: password, database: database), shown)
    }
    let tls: PostgresConnection.Configuration.TLS
    switch query["sslmode"] ?? "disable" {
    case "disable", "allow":
        tls = .disable
    case "prefer", "require", "verify-ca", "verify-full":
        do {
            var settings = TLSConfiguration.makeClientConfiguration()
            if ["prefer", "require"].contains(query["sslmode"]) { settings.certificateVerification = .none }
            let context = try NIOSSLContext(configuration: settings)
            tls = query["sslmode"] == "prefer" ? .prefer(context) : .require(context)
        } catch {
            throw .unavailable(store: shown, reason: "cannot set up TLS: \(error)")
        }
    case let mode:
        throw .unavailable(store: shown, reason: "unknown sslmode '\(mode)': expected disable, prefer, require, verify-ca or verify-full")
    }
    var configuration = PostgresConnection.Configuration(host: components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost", port: port,
                                                         username: user, password: password, database: database, tls: tls)
    configuration.options.connectTimeout = .seconds(5)
    return (configuration, shown)
}

/// What PostgreSQL said (postgres-nio's errors hide it from their description).
func postgresReason(_ error: any Error) -> String {
    if let error = error as? PSQLError {
        if let message = error.serverInfo?[.message] {
            let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return message + state
        }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }
    return "\(error)"
}

private func storeNow() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
