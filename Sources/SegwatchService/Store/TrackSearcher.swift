import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchPipeline
import SegwatchStore
import Synchronization

/// Searching a segment store by text, as `segwatch search` and the daemon's API do: the text is
/// embedded as a vocabulary label is, by the CLIP model and with the prompt templates of the runs
/// that stored the tracks, and the tracks are ranked by their exact cosine with it.
public final class TrackSearcher: Sendable {
    public let store: any SegmentStore
    /// How the store is named in messages (its path or URL).
    public let location: String
    let cache: VocabularyCache?
    /// CLIP's text side: the daemon's loaded model, or one loaded when first needed.
    let embedder: @Sendable (String) throws -> VocabularyEmbedder
    /// The first pass's codes of every track, kept current by the daemon's store sinks; without
    /// one each search reads them from the store.
    public let index: TrackIndex?
    /// A fleet's store (`refreshes`): other hosts write tracks too, so before a search the index
    /// takes the codes of the tracks seen since its last look (less a margin for the hosts'
    /// clocks), and every ten minutes all of them again (retention deletes tracks).
    private let refreshes: Bool
    private let lastRefresh = Mutex<(recent: Date, full: Date)>((Date(), Date()))
    static let clockMargin: TimeInterval = 300, fullRefresh: TimeInterval = 600

    public init(store: any SegmentStore, location: String, cache: VocabularyCache?, index: TrackIndex? = nil, refreshes: Bool = false,
                embedder: @escaping @Sendable (String) throws -> VocabularyEmbedder) {
        (self.store, self.location, self.cache, self.index, self.embedder) = (store, location, cache, index, embedder)
        self.refreshes = refreshes
    }

    /// Brings the index up to date with what other hosts wrote (`refreshes`).
    private func refreshIndex() throws(StoreError) {
        guard refreshes, let index else { return }
        let now = Date()
        let (recent, full) = lastRefresh.withLock { last -> (Date, Bool) in
            let recent = last.recent, full = now.timeIntervalSince(last.full) >= Self.fullRefresh
            last.recent = now
            if full { last.full = now }
            return (recent, full)
        }
        if full {
            index.removeAll()
            try store.codes(TrackFilter(), into: index)
        } else {
            try store.codes(TrackFilter(since: storeTime(recent.addingTimeInterval(-Self.clockMargin))), into: index)
        }
    }

    /// The CLIP model (`clip`, or the one the runs recorded), templates and width of the tracks
    /// of `camera` (or of all): the runs must agree on them, and `clip` must be their model.
    public func embeddingSpace(camera: String?, clip: String? = nil) throws -> (clip: String, digest: UInt64, templates: PromptTemplates, dimension: Int) {
        let runs = try store.runs().filter { camera == nil || $0.record.camera == camera }
        guard let first = runs.first?.record else {
            throw ServiceError("\(location): no runs stored" + (camera.map { " for camera \(quoted($0))" } ?? ""))
        }
        for run in runs where run.record.clipDigest != first.clipDigest || run.record.templates != first.templates {
            throw ServiceError("\(location): its runs embedded their tracks with different CLIP models or templates (\(first.clip), "
                               + "\(run.record.clip)); search one camera at a time")
        }
        let model = clip ?? first.clip
        let digest = try CLIPFiles.digest(model, memo: cache?.digestMemo)
        guard hexDigest(digest) == first.clipDigest else {
            throw ServiceError("the CLIP model \(model) is not the one the tracks were embedded with (\(first.clip), digest \(first.clipDigest))")
        }
        return (model, digest, try PromptTemplates(first.templates), first.dimension)
    }

    /// `text` embedded as a vocabulary label (synonyms after |) in the tracks' space.
    public func embed(_ text: String, camera: String?, clip: String? = nil) throws -> [Float] {
        let space = try embeddingSpace(camera: camera, clip: clip)
        let label = try VocabularyLabel(parsing: text, origin: "the search text")
        let embedded = try embedder(space.clip).embeddings(try Vocabulary([label]), templates: space.templates, cache: cache)
        guard embedded.dimension == space.dimension else {
            throw ServiceError("the text's embedding has \(embedded.dimension) values and the tracks' \(space.dimension)")
        }
        return Array(embedded.row(0))
    }

    /// The `limit` tracks closest to `text` among those `filter` lets through, best first, and
    /// how many tracks they were ranked among.
    public func search(_ text: String, filter: TrackFilter, limit: Int, clip: String? = nil, threads: Int = 2) throws
        -> (results: [(hit: TrackHit, track: StoredTrack)], searched: Int) {
        try search(query: try embed(text, camera: filter.camera, clip: clip), filter: filter, limit: limit, threads: threads)
    }

    /// The runs' head digest, which a query by example must be embedded with: the runs of
    /// `camera` (or all) must agree on it, and `head` (the query's head file digest) be it.
    public func checkHead(_ head: String?, camera: String?) throws {
        let runs = try store.runs().filter { camera == nil || $0.record.camera == camera }
        let digests = Set(runs.map(\.record.headDigest))
        guard digests.count <= 1 else { throw ServiceError("\(location): its runs used different segment heads; search one camera at a time") }
        guard let used = digests.first, used != head else { return }
        throw ServiceError(used.map { "the tracks were embedded with the head of digest \($0): give that file as --head" + (head == nil ? "" : " (this one is \(head!))") }
                           ?? "the tracks were embedded without a segment head: leave --head out")
    }

    /// The `limit` tracks closest to `query` (a unit vector in the tracks' space).
    public func search(query: [Float], filter: TrackFilter, limit: Int, threads: Int = 2) throws
        -> (results: [(hit: TrackHit, track: StoredTrack)], searched: Int) {
        try refreshIndex()
        let found = try searchTracks(store, query: query, filter: filter, limit: limit, index: index, threads: threads)
        let tracks = Dictionary(uniqueKeysWithValues: try store.tracks(found.hits.map(\.id)).map { ($0.id, $0) })
        return (found.hits.compactMap { hit in tracks[hit.id].map { (hit, $0) } }, found.searched)
    }
}

extension TrackSearcher {
    /// The stored tracks `filter` lets through classified again under `vocabulary`, from their
    /// stored embeddings, as the labeling classifies a segment (CLIP's logit scale, the
    /// background prompts with `background`, unknown below `minScore`), and kept in the store
    /// under the vocabulary's digest. `templates` default to the runs' own, so that the new
    /// labels live where the runs' did. The digest and each track's new label.
    public func relabel(_ vocabulary: Vocabulary, templates: PromptTemplates? = nil, background: Bool, minScore: Float, filter: TrackFilter,
                        clip: String? = nil, progress: ((Int, Int) -> Void)? = nil,
                        warn: (String) -> Void = { _ in }) throws -> (vocabulary: String, labels: [TrackLabel]) {
        let space = try embeddingSpace(camera: filter.camera, clip: clip)
        let text = try embedder(space.clip)
        let (labels, backgroundLabels) = try text.labelsAndBackground(vocabulary, templates: templates ?? space.templates, background: background,
                                                                      cache: cache, progress: progress, warn: warn)
        guard labels.dimension == space.dimension else {
            throw ServiceError("the vocabulary's embeddings have \(labels.dimension) values and the tracks' \(space.dimension)")
        }
        var options = ClassifierOptions()
        options.minimumProbability = minScore
        let classifier = SegmentClassifier(labels: labels, background: backgroundLabels, logitScale: text.clip.logitScale, options: options)
        let candidates = try store.candidates(filter).filter { $0.embedding.count == space.dimension }
        var relabeled: [TrackLabel] = []
        for start in stride(from: 0, to: candidates.count, by: 4096) {
            let chunk = candidates[start..<min(start + 4096, candidates.count)]
            for (candidate, result) in zip(chunk, try classifier.classify(chunk.map(\.embedding))) {
                relabeled.append(TrackLabel(id: candidate.id, label: result.label.map { labels.labels[$0].name } ?? "unknown", score: Double(result.score)))
            }
        }
        let digest = StoreSink.vocabularyDigest(labels)
        try store.saveLabeling(VocabularyRecord(digest: digest, labels: labels.labels.map(\.name), clipDigest: hexDigest(space.digest),
                                                created: storeTime(Date())), labels: relabeled)
        return (digest, relabeled)
    }
}

/// A stored track as search results give it (JSON): `track`, `camera`, `label`, `start` and
/// `end` (ISO 8601 UTC), their pts, `best_score`, `thumbnail` (a path or URL, or null), its
/// `labelings` under later vocabularies, and `score` and `rank` for a search's result.
public func trackResultObject(_ track: StoredTrack, score: Double? = nil, rank: Int? = nil, thumbnail: String?) -> [String: Any] {
    var object: [String: Any] = [
        "id": track.id, "track": track.row.track, "camera": track.camera, "label": track.row.label,
        "start": isoTime(Date(timeIntervalSince1970: Double(track.row.start) / 1000)),
        "end": isoTime(Date(timeIntervalSince1970: Double(track.row.end) / 1000)),
        "start_pts": track.row.startPts, "end_pts": track.row.endPts, "best_score": track.row.score,
        "thumbnail": thumbnail ?? NSNull(),
        "labelings": track.labelings.map { ["vocabulary": $0.vocabulary, "label": $0.label, "score": $0.score] as [String: Any] },
    ]
    if let score { object["score"] = score }
    if let rank { object["rank"] = rank }
    return object
}
