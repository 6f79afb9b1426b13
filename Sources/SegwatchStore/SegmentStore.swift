// The segment store: what runs saw, kept to be searched and relabeled later. One interface,
// one versioned schema (`StoreSchema`), an implementation per database.
import Foundation

/// A store of cameras, runs and tracks. Every method is one transaction: a frame's writes land
/// whole or not at all, so a killed process leaves the store as of its last frame.
public protocol SegmentStore: AnyObject, Sendable {
    /// Registers a run of `camera` (creating the camera on its first run); its id.
    func beginRun(_ run: RunRecord) throws(StoreError) -> Int64
    /// The tracks, label changes, boxes and stuff of one analyzed frame, in one transaction; the
    /// store ids of the batch's tracks, by track id.
    @discardableResult
    func write(_ batch: FrameBatch) throws(StoreError) -> [Int: Int64]
    /// Marks the run ended at `time` (milliseconds since 1970).
    func endRun(_ run: Int64, time: Int64) throws(StoreError)
    /// The tracks that `filter` lets through with their embeddings, for ranking.
    func candidates(_ filter: TrackFilter) throws(StoreError) -> [TrackEmbedding]
    /// The int8 codes of the tracks `filter` lets through, for a search's first pass (`TrackIndex`).
    func codes(_ filter: TrackFilter, into index: TrackIndex) throws(StoreError)
    /// The embeddings of these tracks (those that are there), for ranking candidates exactly.
    func embeddings(_ ids: [Int64]) throws(StoreError) -> [TrackEmbedding]
    /// The tracks of these ids, in that order (ids that are not there are left out).
    func tracks(_ ids: [Int64]) throws(StoreError) -> [StoredTrack]
    /// The thumbnail of the track with this store id, if it has one.
    func thumbnail(_ id: Int64) throws(StoreError) -> Thumbnail?
    /// The track `track` of `camera`, if stored.
    func track(camera: String, track: Int) throws(StoreError) -> StoredTrack?
    /// The runs stored, oldest first.
    func runs() throws(StoreError) -> [StoredRun]
    /// Keeps the labels of these tracks under `vocabulary` (replacing an earlier labeling of
    /// theirs under the same vocabulary), in one transaction.
    func saveLabeling(_ vocabulary: VocabularyRecord, labels: [TrackLabel]) throws(StoreError)
    /// Retention: deletes the tracks (with their labels, boxes and thumbnails) last seen before
    /// `before` and the stuff summaries of minutes before it, the frame events before
    /// `framesBefore`, then the oldest tracks (and the frame events and stuff before the oldest
    /// left) until the store takes at most `maxBytes`; the space is given back.
    func prune(before: Int64?, framesBefore: Int64?, maxBytes: Int64?) throws(StoreError) -> PruneReport
    /// The frame events kept that `filter` lets through (its camera and time window), oldest
    /// first, at most `limit`.
    func frames(_ filter: TrackFilter, limit: Int) throws(StoreError) -> [StoredFrame]
}

/// A kept frame event: its line and its time (milliseconds since 1970).
public struct StoredFrame: Sendable, Equatable {
    public var time: Int64
    public var line: String
}

public struct PruneReport: Sendable, Equatable {
    public var tracksDeleted = 0
    public var framesDeleted = 0
    /// The store's size before and after, in bytes.
    public var bytesBefore: Int64 = 0
    public var bytesAfter: Int64 = 0

    public init() {}
}

/// A vocabulary tracks were labeled with after their run (`segwatch relabel`).
public struct VocabularyRecord: Sendable, Equatable {
    public var digest: String
    public var labels: [String]
    public var clipDigest: String
    /// Milliseconds since 1970.
    public var created: Int64

    public init(digest: String, labels: [String], clipDigest: String, created: Int64) {
        (self.digest, self.labels, self.clipDigest, self.created) = (digest, labels, clipDigest, created)
    }
}

/// A track's label under a vocabulary.
public struct TrackLabel: Sendable, Equatable {
    public var id: Int64
    public var label: String
    public var score: Double

    public init(id: Int64, label: String, score: Double) {
        (self.id, self.label, self.score) = (id, label, score)
    }
}

/// The store at `location`: a `postgres://` URL (a fleet's database) or a SQLite file's path.
public func openSegmentStore(_ location: String) throws(StoreError) -> any SegmentStore {
    if isPostgresURL(location) { return try PostgresStore(url: location) }
    return try SQLiteStore(path: location)
}

public func isPostgresURL(_ location: String) -> Bool {
    location.hasPrefix("postgres://") || location.hasPrefix("postgresql://")
}

/// A run as it starts: its camera, models and vocabulary.
public struct RunRecord: Sendable, Equatable {
    public var camera: String
    /// Milliseconds since 1970.
    public var started: Int64
    /// The CLIP model the embeddings live in (its path or name, as the run was given it) and the
    /// digest of its content; the USE head's digest, if one was used.
    public var clip: String
    public var clipDigest: String
    public var headDigest: String?
    public var vocabularyDigest: String
    public var labels: [String]
    /// The prompt templates the labels were embedded with: a search query is embedded with them.
    public var templates: [String]
    /// The embeddings' width.
    public var dimension: Int
    /// The job this run is the work of, and the attempt of it (`segwatch worker`; PostgreSQL).
    public var job: JobFence?

    public init(camera: String, started: Int64, clip: String, clipDigest: String, headDigest: String?, vocabularyDigest: String,
                labels: [String], templates: [String], dimension: Int) {
        (self.camera, self.started, self.clip, self.clipDigest, self.headDigest) = (camera, started, clip, clipDigest, headDigest)
        (self.vocabularyDigest, self.labels, self.templates, self.dimension) = (vocabularyDigest, labels, templates, dimension)
    }
}

public struct StoredRun: Sendable, Equatable {
    public var id: Int64
    public var record: RunRecord
    public var ended: Int64?
}

/// What one analyzed frame changed: the tracks seen or ended (their whole current row), the
/// label changes, the boxes sampled, and the stuff seen.
public struct FrameBatch: Sendable {
    public var run: Int64
    public var camera: String
    /// Milliseconds since 1970, and the frame's pts.
    public var time: Int64
    public var pts: Double
    public var tracks: [TrackRow] = []
    public var labelChanges: [LabelChange] = []
    public var boxes: [TrackBox] = []
    /// Stuff labels with the fraction of the frame they cover.
    public var stuff: [(label: String, fraction: Double)] = []
    /// New thumbnails, by track.
    public var thumbnails: [(track: Int, thumbnail: Thumbnail)] = []
    /// The job whose run this is, written only while that attempt still holds the job.
    public var job: JobFence?
    /// The frame's event line, when the run keeps frame events.
    public var frame: String?

    public init(run: Int64, camera: String, time: Int64, pts: Double) {
        (self.run, self.camera, self.time, self.pts) = (run, camera, time, pts)
    }

    public var isEmpty: Bool { tracks.isEmpty && labelChanges.isEmpty && boxes.isEmpty && stuff.isEmpty && thumbnails.isEmpty && frame == nil }

    /// About what the batch takes in memory: its embeddings and thumbnails, and a little per row.
    public var approximateBytes: Int {
        tracks.reduce(0) { $0 + 4 * ($1.embedding.count + $1.bestEmbedding.count) + 160 } + thumbnails.reduce(0) { $0 + $1.thumbnail.data.count + 64 }
            + 64 * (labelChanges.count + boxes.count + stuff.count) + (frame?.utf8.count ?? 0) + 128
    }
}

/// A track's row as it stands.
public struct TrackRow: Sendable, Equatable {
    public var track: Int
    public var start: Int64
    public var end: Int64
    public var startPts: Double
    public var endPts: Double
    public var ended: Bool
    /// The voted label ("unknown" when there is none) and the best probability it has had.
    public var label: String
    public var score: Double
    /// Segments whose embedding was computed on their own frame (not carried over).
    public var observations: Int
    /// The normalized mean of those segments' embeddings, and the best observation's (stored
    /// as float16).
    public var embedding: [Float]
    public var bestEmbedding: [Float]
    public var bestScore: Double
    public var bestPts: Double

    public init(track: Int, start: Int64, end: Int64, startPts: Double, endPts: Double, ended: Bool, label: String, score: Double,
                observations: Int, embedding: [Float], bestEmbedding: [Float], bestScore: Double, bestPts: Double) {
        (self.track, self.start, self.end, self.startPts, self.endPts, self.ended) = (track, start, end, startPts, endPts, ended)
        (self.label, self.score, self.observations, self.embedding) = (label, score, observations, embedding)
        (self.bestEmbedding, self.bestScore, self.bestPts) = (bestEmbedding, bestScore, bestPts)
    }
}

public struct LabelChange: Sendable, Equatable {
    public var track: Int
    public var label: String
    public var previous: String?

    public init(track: Int, label: String, previous: String?) {
        (self.track, self.label, self.previous) = (track, label, previous)
    }
}

/// A box `[x, y, w, h]` in pixels.
public struct TrackBox: Sendable, Equatable {
    public var track: Int
    public var box: [Int]

    public init(track: Int, box: [Int]) {
        (self.track, self.box) = (track, box)
    }
}

public struct Thumbnail: Sendable, Equatable {
    /// `jpeg` or `png`.
    public var format: String
    public var data: Data

    public init(format: String, data: Data) {
        (self.format, self.data) = (format, data)
    }
}

/// Which tracks a search looks at.
public struct TrackFilter: Sendable, Equatable {
    public var camera: String?
    /// Tracks seen at or after `since` and at or before `until` (milliseconds since 1970).
    public var since: Int64?
    public var until: Int64?
    /// The voted label, or a label under a later vocabulary.
    public var label: String?

    public init(camera: String? = nil, since: Int64? = nil, until: Int64? = nil, label: String? = nil) {
        (self.camera, self.since, self.until, self.label) = (camera, since, until, label)
    }
}

/// A track's store id and the embedding search ranks.
public struct TrackEmbedding: Sendable {
    public var id: Int64
    public var embedding: [Float]
}

/// A stored track, as search reports it.
public struct StoredTrack: Sendable, Equatable {
    public var id: Int64
    public var camera: String
    public var run: Int64
    public var row: TrackRow
    public var labelHistory: [LabelChange]
    public var boxes: [[Int]]
    public var thumbnail: Thumbnail?
    /// Its labels under later vocabularies, by vocabulary digest, oldest labeling first.
    public var labelings: [Labeling]
}

/// A stored track's label under a vocabulary (its digest).
public struct Labeling: Sendable, Equatable {
    public var vocabulary: String
    public var label: String
    public var score: Double
}
