// What the store keeps of a run's live tracks between frames: the sum of each track's segment
// embeddings (its stored embedding is that sum normalized), its best observation, and the
// boxes sampled so far. Each analyzed frame becomes one `FrameBatch`.
import SegwatchTensor

/// A tracked segment of an analyzed frame.
public struct ObservedSegment: Sendable {
    public var track: Int
    /// The track's voted label after this frame ("unknown" when none) and this segment's
    /// probability of it.
    public var label: String
    public var score: Double
    /// The segment's embedding; nil when it was carried over from an earlier frame (it then
    /// counts once, on the frame that computed it).
    public var embedding: [Float]?
    /// The embedding its label came from (this frame's or the carried one), for the best observation.
    public var scoredEmbedding: [Float]
    /// `[x, y, w, h]` in pixels.
    public var box: [Int]

    public init(track: Int, label: String, score: Double, embedding: [Float]?, scoredEmbedding: [Float], box: [Int]) {
        (self.track, self.label, self.score, self.embedding, self.scoredEmbedding, self.box) = (track, label, score, embedding, scoredEmbedding, box)
    }
}

/// A track's start, change of voted label, or end.
public struct ObservedTrackEvent: Sendable {
    public enum Kind: String, Sendable { case start, label, end }
    public var kind: Kind
    public var track: Int
    public var label: String
    public var previous: String?
    public var pts: Double
    /// The best probability the track's label has had.
    public var bestScore: Double

    public init(kind: Kind, track: Int, label: String, previous: String?, pts: Double, bestScore: Double) {
        (self.kind, self.track, self.label, self.previous, self.pts, self.bestScore) = (kind, track, label, previous, pts, bestScore)
    }
}

public struct TrackLedger: Sendable {
    /// Boxes are kept at a track's 1st, 2nd, 4th, 8th ... sighting, and its last: a few per
    /// track however long it lives.
    private struct Live: Sendable {
        var row: TrackRow
        var sum: [Double]
        var sightings = 0
        var lastBox: [Int] = []
        var lastBoxSampled = false
    }

    public let run: Int64
    public let camera: String
    private var live: [Int: Live] = [:]

    public init(run: Int64, camera: String) {
        (self.run, self.camera) = (run, camera)
    }

    /// The tracks not yet ended.
    public var liveTracks: Int { live.count }

    /// The batch of one analyzed frame: every track seen or ended on it, as it now stands; and
    /// the tracks whose best observation is this frame's (their thumbnails are to be made).
    public mutating func frame(time: Int64, pts: Double, segments: [ObservedSegment], events: [ObservedTrackEvent],
                               stuff: [(label: String, fraction: Double)]) -> (batch: FrameBatch, newBest: [Int]) {
        var batch = FrameBatch(run: run, camera: camera, time: time, pts: pts)
        batch.stuff = stuff
        var touched: [Int] = [], newBest: [Int] = []
        func touch(_ track: Int) { if !touched.contains(track) { touched.append(track) } }
        for segment in segments {
            var entry = live[segment.track] ?? Live(
                row: TrackRow(track: segment.track, start: time, end: time, startPts: pts, endPts: pts, ended: false, label: segment.label,
                              score: 0, observations: 0, embedding: [], bestEmbedding: segment.scoredEmbedding, bestScore: -1, bestPts: pts),
                sum: [Double](repeating: 0, count: segment.scoredEmbedding.count))
            entry.row.end = time
            entry.row.endPts = pts
            entry.row.label = segment.label
            entry.row.score = max(entry.row.score, segment.score)
            if let embedding = segment.embedding, embedding.count == entry.sum.count {
                let unit = normalized(embedding)
                for i in entry.sum.indices { entry.sum[i] += Double(unit[i]) }
                entry.row.observations += 1
                entry.row.embedding = normalized(entry.sum.map { Float($0) })
            } else if entry.row.embedding.isEmpty {
                entry.row.embedding = normalized(segment.scoredEmbedding)
            }
            if segment.score > entry.row.bestScore {
                (entry.row.bestScore, entry.row.bestEmbedding, entry.row.bestPts) = (segment.score, normalized(segment.scoredEmbedding), pts)
                newBest.append(segment.track)
            }
            entry.sightings += 1
            entry.lastBox = segment.box
            entry.lastBoxSampled = entry.sightings & (entry.sightings - 1) == 0
            if entry.lastBoxSampled { batch.boxes.append(TrackBox(track: segment.track, box: segment.box)) }
            live[segment.track] = entry
            touch(segment.track)
        }
        for event in events {
            guard var entry = live[event.track] else { continue }
            entry.row.label = event.label
            entry.row.score = max(entry.row.score, event.bestScore)
            switch event.kind {
            case .start:
                (entry.row.start, entry.row.startPts) = (time, event.pts)
            case .label:
                batch.labelChanges.append(LabelChange(track: event.track, label: event.label, previous: event.previous))
            case .end:
                entry.row.ended = true
                if !entry.lastBoxSampled, !entry.lastBox.isEmpty { batch.boxes.append(TrackBox(track: event.track, box: entry.lastBox)) }
            }
            live[event.track] = entry
            touch(event.track)
        }
        for track in touched {
            batch.tracks.append(live[track]!.row)
            if live[track]!.row.ended { live[track] = nil }
        }
        return (batch, newBest)
    }
}
