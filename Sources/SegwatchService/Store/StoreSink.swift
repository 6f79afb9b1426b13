import Foundation
import Metrics
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchPipeline
import SegwatchSAM
import SegwatchStore
import Synchronization

/// The segment store as one more output of a run: each analyzed frame's tracks, label changes,
/// sampled boxes and stuff, in one transaction, written before the frame's events, so that
/// every event a reader has seen is in the store even after a `kill -9`.
///
/// The labels and scores are the events' own (`FrameRecord`, `TrackRecord`): the store and the
/// JSON lines never disagree.
///
/// A run (`tolerant: false`) stops at a store error, as at any output's; the daemon
/// (`tolerant: true`) keeps analyzing and writing events, counts the failed writes and shows the
/// last error in its health and metrics, and keeps the frames it could not write, in order, up
/// to `bufferBytes`: each later frame first writes them (a full disk freed, a database back);
/// past the bound the oldest are dropped, and counted. One camera's thread writes; `status` may
/// be read from any.
public final class StoreSink: @unchecked Sendable {
    public struct Status: Sendable, Equatable {
        public var failedWrites = 0
        public var lastError: String?
        public var lastErrorTime: Date?
        /// Frames waiting to be written, and frames dropped from that buffer when it was full.
        public var bufferedFrames = 0
        public var droppedFrames = 0
    }
    /// The most a tolerant sink keeps of the frames it could not write, by default.
    public static let defaultBufferBytes = 64 << 20
    /// How long tracks are kept, and how large the store may grow: applied when the run starts
    /// and every ten minutes of it.
    public struct Retention: Sendable, Equatable {
        public var days: Double?
        public var maxBytes: Int64?
        /// How long frame events are kept (when the run keeps them).
        public var frameDays: Double?

        public init(days: Double? = nil, maxBytes: Int64? = nil, frameDays: Double? = nil) {
            (self.days, self.maxBytes, self.frameDays) = (days, maxBytes, frameDays)
        }
    }

    public let store: any SegmentStore
    public private(set) var run: Int64
    private var ledger: TrackLedger
    /// The job attempt the run is the work of (`segwatch worker`): every frame is fenced by it.
    private var job: JobFence?
    private let retention: Retention?
    private var lastPrune: Date
    private let tolerant: Bool
    /// The daemon's first-pass codes, kept current with every row written.
    private let index: TrackIndex?
    private let state = Mutex(Status())
    /// `segwatch_store_failed_writes_total{camera}`: the daemon's writes the store refused;
    /// `segwatch_store_dropped_frames_total{camera}`: frames given up when the buffer was full.
    private let failures, drops: Counter
    /// The frames not yet written (tolerant), oldest first, each with its size, and their total.
    private var pending: [(batch: FrameBatch, bytes: Int)] = []
    private var pendingBytes = 0
    private let bufferBytes: Int
    /// Whether each analyzed frame's event is kept too.
    private let keepsFrames: Bool

    /// Registers the run in `store`, after applying `retention` once.
    public init(store: any SegmentStore, run record: RunRecord, retention: Retention? = nil, tolerant: Bool = false,
                index: TrackIndex? = nil, frames: Bool = false, bufferBytes: Int = StoreSink.defaultBufferBytes) throws(StoreError) {
        self.store = store
        self.retention = retention
        self.tolerant = tolerant
        self.bufferBytes = bufferBytes
        keepsFrames = frames
        self.index = index
        failures = Counter(label: "segwatch_store_failed_writes_total", dimensions: [("camera", record.camera)])
        drops = Counter(label: "segwatch_store_dropped_frames_total", dimensions: [("camera", record.camera)])
        lastPrune = Date()
        run = try store.beginRun(record)
        ledger = TrackLedger(run: run, camera: record.camera)
        job = record.job
        try prune(now: lastPrune)
    }

    public var status: Status { state.withLock { $0 } }

    /// Ends the current run and starts `record`'s (a camera's new vocabulary): its tracks are
    /// ended first, by the caller.
    public func beginRun(_ record: RunRecord, time: Date) throws(StoreError) {
        try tolerating { () throws(StoreError) in
            try store.endRun(run, time: storeTime(time))
            run = try store.beginRun(record)
            ledger = TrackLedger(run: run, camera: record.camera)
            job = record.job
        }
    }

    /// `body`, whose store error is thrown, or (tolerant) counted and kept for the health report.
    private func tolerating(_ body: () throws(StoreError) -> Void) throws(StoreError) {
        do {
            try body()
        } catch {
            guard tolerant else { throw error }
            failures.increment()
            state.withLock { status in
                status.failedWrites += 1
                (status.lastError, status.lastErrorTime) = (error.description, Date())
            }
        }
    }

    private func prune(now: Date) throws(StoreError) {
        guard let retention, retention.days != nil || retention.maxBytes != nil || retention.frameDays != nil else { return }
        lastPrune = now
        func cut(_ days: Double?) -> Int64? { days.map { storeTime(now.addingTimeInterval(-$0 * 86_400)) } }
        let report = try store.prune(before: cut(retention.days), framesBefore: cut(retention.frameDays), maxBytes: retention.maxBytes)
        if let index, report.tracksDeleted > 0 {
            index.removeAll()
            try store.codes(TrackFilter(), into: index)
        }
    }

    /// One analyzed frame (its `frame` record is nil when only tracks ended, at the end of a run);
    /// `picture` gives its pixels (packed RGB) for the thumbnails of tracks seen at their best.
    public func write(frame: FrameRecord?, tracks: [TrackRecord], analysis: FrameAnalysis?, picture: () -> [UInt8]? = { nil },
                      time: Date) throws(StoreError) {
        let embeddings = Dictionary((analysis?.segments ?? []).compactMap { segment in segment.track.map { ($0, segment) } },
                                    uniquingKeysWith: { first, _ in first })
        let pts = frame?.pts ?? tracks.first?.pts ?? 0
        let segments = (frame?.segments ?? []).compactMap { record -> ObservedSegment? in
            guard let segment = embeddings[record.track] else { return nil }
            return ObservedSegment(track: record.track, label: record.label, score: record.score,
                                   embedding: segment.scoredPts == pts ? segment.embedding : nil, scoredEmbedding: segment.embedding,
                                   box: record.bbox)
        }
        let events = tracks.compactMap { record in
            ObservedTrackEvent.Kind(rawValue: record.event).map {
                ObservedTrackEvent(kind: $0, track: record.track, label: record.label, previous: record.previous_label, pts: record.pts,
                                   bestScore: record.best_score)
            }
        }
        let area = Double(max((frame?.width ?? 0) * (frame?.height ?? 0), 1))
        let stuff = (frame?.stuff ?? []).map { (label: $0.label, fraction: Double($0.area) / area) }
        var (batch, newBest) = ledger.frame(time: storeTime(time), pts: pts, segments: segments, events: events, stuff: stuff)
        batch.job = job
        if keepsFrames, var record = frame {
            // The line as the events have it, less its event_id (given as the line is written).
            record.time = isoTime(time)
            batch.frame = try? jsonString(record)
        }
        if !newBest.isEmpty, let rgb = picture() {
            for track in newBest {
                guard let segment = embeddings[track], let thumbnail = try? trackThumbnail(rgb: rgb, mask: rleToMask(segment.mask.rle)) else { continue }
                batch.thumbnails.append((track, thumbnail))
            }
        }
        guard tolerant else {
            try commit(batch)
            if time.timeIntervalSince(lastPrune) >= 600 { try prune(now: time) }
            return
        }
        guard !batch.isEmpty || !pending.isEmpty else { return }
        if !batch.isEmpty { buffer(batch) }
        try tolerating { () throws(StoreError) in
            try flush()
            if time.timeIntervalSince(lastPrune) >= 600 { try prune(now: time) }
        }
    }

    /// Writes the frames not yet written, oldest first.
    private func flush() throws(StoreError) {
        defer { state.withLock { $0.bufferedFrames = pending.count } }
        while let first = pending.first {
            try commit(first.batch)
            pending.removeFirst()
            pendingBytes -= first.bytes
        }
    }

    /// Writes `batch` and brings the first pass's codes up to date.
    private func commit(_ batch: FrameBatch) throws(StoreError) {
        let ids = try store.write(batch)
        if let index {
            for row in batch.tracks { if let id = ids[row.track] { index.upsert(id: id, code: TrackCode(row.embedding)) } }
        }
    }

    /// Queues `batch` behind the frames not yet written, dropping the oldest past the bound.
    private func buffer(_ batch: FrameBatch) {
        let bytes = batch.approximateBytes
        pending.append((batch, bytes))
        pendingBytes += bytes
        var dropped = 0
        while pendingBytes > bufferBytes, pending.count > 1 {
            pendingBytes -= pending.removeFirst().bytes
            dropped += 1
        }
        if dropped > 0 {
            drops.increment(by: Int64(dropped))
            state.withLock { $0.droppedFrames += dropped }
        }
    }

    /// Marks the run ended.
    public func finish(time: Date) throws(StoreError) {
        try tolerating { () throws(StoreError) in
            try flush()
            try store.endRun(run, time: storeTime(time))
        }
    }

    /// A vocabulary's identity in the store: its labels' names and embeddings, so that the same
    /// words embedded by the same model (and templates) are one vocabulary.
    public static func vocabularyDigest(_ labels: LabelEmbeddings) -> String {
        var hasher = XXH64()
        for label in labels.labels {
            hasher.update(label.name)
            hasher.update([0])
        }
        labels.values.withUnsafeBytes { hasher.update($0) }
        return hexDigest(hasher.digest())
    }
}

extension RunRecord {
    /// A run of `camera` starting now, as the store records it: the CLIP model (as given, and the
    /// digest of its content), the head's digest, the labels' vocabulary (its digest, names and
    /// width) and the prompt templates they were embedded with.
    public init(camera: String, clip: String, head: String?, labels: LabelEmbeddings, templates: PromptTemplates, digestMemo: URL?) throws {
        self.init(camera: camera, started: storeTime(Date()), clip: clip, clipDigest: hexDigest(try CLIPFiles.digest(clip, memo: digestMemo)),
                  headDigest: try head.map { hexDigest(try fileDigest($0)) }, vocabularyDigest: StoreSink.vocabularyDigest(labels),
                  labels: labels.labels.map(\.name), templates: templates.templates, dimension: labels.dimension)
    }
}

/// A wall-clock time as the store keeps it: milliseconds since 1970, rounded as the events'
/// `time` is.
public func storeTime(_ date: Date) -> Int64 {
    Int64((date.timeIntervalSince1970 * 1000).rounded())
}
