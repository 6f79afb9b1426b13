import Foundation

// The store's schema, one list of migrations for every database. Each migration is named
// (`v1`, ...) and applied once, in order; a store that has a migration this list lacks was
// written by a newer segwatch and is refused. The SQL is written once, with the few types
// that differ between databases as placeholders.
//
// Times are integer milliseconds since 1970 (the events' `time`, exactly); embeddings are
// float32 little-endian bytes, the best observation's float16, and `code` the int8 first-pass
// code of `embedding` (`TrackCode`).

/// The types a database spells its own way.
struct SQLDialect: Sendable {
    /// An auto-numbered 64-bit primary key.
    var serial: String
    var bytes: String
    var double: String

    static let sqlite = SQLDialect(serial: "INTEGER PRIMARY KEY AUTOINCREMENT", bytes: "BLOB", double: "REAL")
    static let postgres = SQLDialect(serial: "BIGSERIAL PRIMARY KEY", bytes: "BYTEA", double: "DOUBLE PRECISION")

    func sql(_ template: String) -> String {
        template.replacingOccurrences(of: "{serial}", with: serial).replacingOccurrences(of: "{bytes}", with: bytes)
            .replacingOccurrences(of: "{double}", with: double)
    }
}

enum StoreSchema {
    /// The migrations, oldest first: a name and its statements.
    static let migrations: [(name: String, statements: [String])] = [
        ("v1", [
            """
            CREATE TABLE cameras (
                id {serial},
                name TEXT NOT NULL UNIQUE)
            """,
            """
            CREATE TABLE runs (
                id {serial},
                camera_id BIGINT NOT NULL REFERENCES cameras(id),
                started BIGINT NOT NULL,
                ended BIGINT,
                clip TEXT NOT NULL,
                clip_digest TEXT NOT NULL,
                head_digest TEXT,
                vocabulary_digest TEXT NOT NULL,
                labels TEXT NOT NULL,
                templates TEXT NOT NULL,
                dimension INTEGER NOT NULL)
            """,
            """
            CREATE TABLE tracks (
                id {serial},
                camera_id BIGINT NOT NULL REFERENCES cameras(id),
                run_id BIGINT NOT NULL REFERENCES runs(id),
                track BIGINT NOT NULL,
                start_time BIGINT NOT NULL,
                end_time BIGINT NOT NULL,
                start_pts {double} NOT NULL,
                end_pts {double} NOT NULL,
                ended INTEGER NOT NULL,
                label TEXT NOT NULL,
                score {double} NOT NULL,
                observations INTEGER NOT NULL,
                embedding {bytes} NOT NULL,
                code {bytes} NOT NULL,
                code_scale {double} NOT NULL,
                best_embedding {bytes} NOT NULL,
                best_score {double} NOT NULL,
                best_pts {double} NOT NULL,
                UNIQUE (camera_id, track))
            """,
            "CREATE INDEX tracks_by_time ON tracks (start_time, end_time)",
            """
            CREATE TABLE track_labels (
                track_id BIGINT NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
                time BIGINT NOT NULL,
                pts {double} NOT NULL,
                label TEXT NOT NULL,
                previous_label TEXT)
            """,
            "CREATE INDEX track_labels_by_track ON track_labels (track_id)",
            """
            CREATE TABLE track_boxes (
                track_id BIGINT NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
                time BIGINT NOT NULL,
                pts {double} NOT NULL,
                x INTEGER NOT NULL, y INTEGER NOT NULL, w INTEGER NOT NULL, h INTEGER NOT NULL)
            """,
            "CREATE INDEX track_boxes_by_track ON track_boxes (track_id)",
            """
            CREATE TABLE thumbnails (
                track_id BIGINT PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
                format TEXT NOT NULL,
                data {bytes} NOT NULL)
            """,
            """
            CREATE TABLE stuff_minutes (
                camera_id BIGINT NOT NULL REFERENCES cameras(id),
                minute BIGINT NOT NULL,
                label TEXT NOT NULL,
                frames INTEGER NOT NULL,
                coverage {double} NOT NULL,
                PRIMARY KEY (camera_id, minute, label))
            """,
            """
            CREATE TABLE vocabularies (
                digest TEXT PRIMARY KEY,
                labels TEXT NOT NULL,
                clip_digest TEXT NOT NULL,
                created BIGINT NOT NULL)
            """,
            """
            CREATE TABLE labelings (
                track_id BIGINT NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
                vocabulary TEXT NOT NULL REFERENCES vocabularies(digest),
                label TEXT NOT NULL,
                score {double} NOT NULL,
                PRIMARY KEY (track_id, vocabulary))
            """,
        ]),
        // v2: the queue of files for workers (`segwatch submit`, `worker`, `jobs`; PostgreSQL), and
        // frame events. A job's
        // results are its runs (`runs.job_id`) with their tracks, under a camera of its own, so that
        // a job claimed again replaces what an earlier attempt left; `attempts` fences a worker
        // whose lease was taken over.
        ("v2", [
            """
            CREATE TABLE jobs (
                id {serial},
                file TEXT NOT NULL,
                camera TEXT NOT NULL,
                state TEXT NOT NULL,
                submitted BIGINT NOT NULL,
                attempts INTEGER NOT NULL,
                worker TEXT,
                lease_until BIGINT,
                started BIGINT,
                finished BIGINT,
                frames BIGINT NOT NULL,
                tracks BIGINT NOT NULL,
                error TEXT)
            """,
            "CREATE INDEX jobs_by_state ON jobs (state, id)",
            // The tracks seen lately: what a fleet's daemon reads before a search.
            "CREATE INDEX tracks_by_end ON tracks (end_time)",
            "ALTER TABLE runs ADD COLUMN job_id BIGINT REFERENCES jobs(id)",
            "CREATE INDEX runs_by_job ON runs (job_id)",
            // Frame events, when a run keeps them (`run --store-frames`, `[store] frames`): each
            // analyzed frame's line as the events have it (less its event_id), under a retention
            // of its own.
            """
            CREATE TABLE frame_events (
                camera_id BIGINT NOT NULL REFERENCES cameras(id),
                run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                time BIGINT NOT NULL,
                pts {double} NOT NULL,
                line TEXT NOT NULL)
            """,
            "CREATE INDEX frame_events_by_time ON frame_events (camera_id, time)",
        ]),
    ]

    static var latest: String { migrations.last!.name }
}

/// A value bound to a `?` of the SQL both stores share.
enum SQLValue {
    case text(String)
    case integer(Int64)
}

/// The WHERE clause of `filter` over `tracks` joined with `cameras`, with `?` placeholders, and
/// the values they stand for.
func trackConditions(_ filter: TrackFilter) -> (clause: String, values: [SQLValue]) {
    var conditions: [String] = [], values: [SQLValue] = []
    if let camera = filter.camera { conditions.append("cameras.name = ?"); values.append(.text(camera)) }
    if let since = filter.since { conditions.append("tracks.end_time >= ?"); values.append(.integer(since)) }
    if let until = filter.until { conditions.append("tracks.start_time <= ?"); values.append(.integer(until)) }
    if let label = filter.label {
        conditions.append("(tracks.label = ? OR EXISTS (SELECT 1 FROM labelings WHERE labelings.track_id = tracks.id AND labelings.label = ?))")
        values += [.text(label), .text(label)]
    }
    return (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "), values)
}

/// The WHERE clause of `filter`'s camera and time window over `frame_events` joined with
/// `cameras`.
func frameConditions(_ filter: TrackFilter) -> (clause: String, values: [SQLValue]) {
    var conditions: [String] = [], values: [SQLValue] = []
    if let camera = filter.camera { conditions.append("cameras.name = ?"); values.append(.text(camera)) }
    if let since = filter.since { conditions.append("frame_events.time >= ?"); values.append(.integer(since)) }
    if let until = filter.until { conditions.append("frame_events.time <= ?"); values.append(.integer(until)) }
    return (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "), values)
}

/// A list of strings as a store keeps it (labels, templates): a JSON array.
func jsonText(_ strings: [String]) -> String {
    String(decoding: (try? JSONEncoder().encode(strings)) ?? Data("[]".utf8), as: UTF8.self)
}

func jsonStrings(_ json: String) -> [String] {
    (try? JSONDecoder().decode([String].self, from: Data(json.utf8))) ?? []
}
