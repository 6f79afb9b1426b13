import SegwatchSAM
import SegwatchTensor

/// How segments become tracks. The defaults suit a few analyzed frames per second.
public struct TrackerOptions: Sendable, Equatable {
    /// Analyzed frames in a row a track may go unseen; on the next unseen one it ends.
    public var maxAge = 30
    /// A segment continues a track only if its mask overlaps the track's predicted mask by at
    /// least this IoU ...
    public var minimumIoU = 0.1
    /// ... and their embeddings agree by at least this cosine (when both have one) ...
    public var minimumCosine: Float = 0.5
    /// ... or, without overlap, if the embeddings agree by this much: an object that reappears
    /// away from where it was expected.
    public var reidentifyCosine: Float = 0.9
    /// The pair similarity is `(1 - w) IoU + w cosine`.
    public var embeddingWeight = 0.5
    /// The weight of a track's earlier label votes at each new frame.
    public var voteDecay: Float = 0.8
    /// A track's label changes only when another label's vote exceeds the current one's by
    /// this factor, so one noisy frame does not flip it.
    public var hysteresis: Float = 1.5

    public init() {}
}

/// A segment of an analyzed frame, as the tracker sees it.
public struct TrackerObservation: Sendable {
    public var mask: BinaryMask
    /// Unit norm, or empty when the segment has no embedding.
    public var embedding: [Float]
    /// The segment's label (nil: unknown) and every label's probability.
    public var classification: Classification

    public init(mask: BinaryMask, embedding: [Float], classification: Classification) {
        self.mask = mask
        self.embedding = embedding
        self.classification = classification
    }
}

/// A track's lifecycle event.
public struct TrackEvent: Sendable, Equatable {
    public enum Kind: String, Sendable { case start, label, end }
    public var kind: Kind
    public var track: Int
    /// The track's label after the event (nil: unknown).
    public var label: Int?
    /// The label before a `.label` event.
    public var previousLabel: Int?
    /// The frame at which the event happened.
    public var pts: Double
    /// The best probability the track's label has had in one of its segments.
    public var bestScore: Float
    /// From the track's first frame to its last seen one.
    public var lifetime: Double
}

/// An object followed across analyzed frames.
public struct Track: Sendable {
    public let id: Int
    /// The latest segment's mask.
    public internal(set) var mask: BinaryMask
    public internal(set) var box: MaskBox
    /// A running mean of the segments' embeddings, normalized.
    public internal(set) var embedding: [Float]
    /// The voted label (nil: unknown).
    public internal(set) var label: Int?
    public internal(set) var bestScore: Float = 0
    public let firstPts: Double
    public internal(set) var lastPts: Double
    /// Analyzed frames since the track was last seen.
    public internal(set) var unseen = 0
    /// The last segment seen whole (not much smaller than the one before), the analyzed frames
    /// since, and the centroid's motion per analyzed frame: where the track is expected is
    /// this mask moved on by its motion, so a partly hidden object is still looked for whole.
    var reference: (mask: BinaryMask, box: MaskBox)
    var sinceReference = 0
    var velocity = (x: 0.0, y: 0.0)
    /// Decayed sums of the segments' probabilities; the last entry is the unknown vote.
    var votes: [Float]

    /// Whether frames classified as `classification` would keep the voted label (or unknown):
    /// repeated, they move the decayed votes in a straight line towards theirs, and the tracker
    /// changes a label only when another's votes pass `hysteresis` times its own. That holds
    /// now, so it holds all along the line when it holds at its end: when no label's share of
    /// the frame's vote passes `hysteresis` times the voted one's.
    public func keepsLabel(_ classification: Classification, hysteresis: Float) -> Bool {
        guard votes.count == classification.probabilities.count + 1 else { return false }
        guard let current = label else { return classification.label == nil }
        guard classification.label != nil else { return false }
        let own = classification.probabilities[current]
        return classification.probabilities.allSatisfy { $0 <= hysteresis * own }
    }
}

/// Where new tracks get their ids. Without one, a tracker numbers its tracks from 1; a service
/// gives each camera a source that persists its counter, so that ids never repeat across
/// restarts and a camera's name and a track id name one track everywhere.
public protocol TrackIDSource: Sendable {
    /// A positive id never handed out before.
    func next() -> Int
}

/// What one analyzed frame did to the tracks.
public struct TrackerUpdate: Sendable {
    /// The track of each observation, in order; nil for an empty mask.
    public var tracks: [Int?]
    public var events: [TrackEvent]
}

/// Matches each analyzed frame's segments to tracks by an optimal assignment on mask overlap
/// (against where each track's motion predicts it) and embedding similarity, with gating;
/// votes labels over time; starts and ends tracks.
public struct Tracker: Sendable {
    public let options: TrackerOptions
    public private(set) var tracks: [Track] = []
    private var nextID = 1
    private let idSource: (any TrackIDSource)?
    /// A segment at least this fraction of the reference's area is the object seen whole; less,
    /// and part of it is taken to be hidden (objects grow and shrink slower than that per frame).
    static let wholeFraction = 0.85

    public init(options: TrackerOptions = TrackerOptions(), ids: (any TrackIDSource)? = nil) {
        self.options = options
        idSource = ids
    }

    public mutating func update(_ observations: [TrackerObservation], pts: Double) -> TrackerUpdate {
        let boxes = observations.map { MaskBox($0.mask) }
        let candidates = observations.indices.filter { boxes[$0] != nil }
        // Pair costs; a pair outside the gates costs more than `forbidden`.
        let forbidden = 1.0
        let cost = tracks.map { track in
            candidates.map { o in pairCost(track, observations[o], boxes[o]!) ?? forbidden + 1 }
        }
        let assignment = minimumCostAssignment(cost, forbidden: forbidden)

        var ids = [Int?](repeating: nil, count: observations.count)
        var events: [TrackEvent] = []
        var live: [Track] = []
        for (t, var track) in tracks.enumerated() {
            if let column = assignment[t] {
                let o = candidates[column]
                ids[o] = track.id
                if let change = observe(&track, observations[o], boxes[o]!, pts: pts) { events.append(change) }
            } else {
                track.unseen += 1
                track.sinceReference += 1
                if track.unseen > options.maxAge {
                    events.append(event(.end, track, pts: pts))
                    continue
                }
            }
            live.append(track)
        }
        for o in candidates where ids[o] == nil {
            let observation = observations[o]
            let id = idSource?.next() ?? nextID
            var track = Track(id: id, mask: observation.mask, box: boxes[o]!, embedding: observation.embedding, firstPts: pts, lastPts: pts,
                              reference: (observation.mask, boxes[o]!), votes: [])
            nextID += 1
            vote(&track, observation.classification)
            track.label = votedLabel(track)
            track.bestScore = track.label.map { observation.classification.probabilities[$0] } ?? 0
            ids[o] = track.id
            events.append(event(.start, track, pts: pts))
            live.append(track)
        }
        tracks = live
        return TrackerUpdate(tracks: ids, events: events)
    }

    /// Ends every live track (the end of the input).
    public mutating func finish(pts: Double) -> [TrackEvent] {
        defer { tracks = [] }
        return tracks.map { event(.end, $0, pts: pts) }
    }

    private func event(_ kind: TrackEvent.Kind, _ track: Track, pts: Double, previous: Int? = nil) -> TrackEvent {
        TrackEvent(kind: kind, track: track.id, label: track.label, previousLabel: previous, pts: pts,
                   bestScore: track.bestScore, lifetime: track.lastPts - track.firstPts)
    }

    /// `1 - similarity` of a track and a segment, or nil when the gates keep them apart.
    private func pairCost(_ track: Track, _ observation: TrackerObservation, _ box: MaskBox) -> Double? {
        let frames = Double(track.sinceReference + 1)
        let shift = (x: Int((track.velocity.x * frames).rounded()), y: Int((track.velocity.y * frames).rounded()))
        let iou = maskIoU(track.reference.mask, track.reference.box, shiftedBy: shift, observation.mask, box)
        let cosine: Float? = track.embedding.count == observation.embedding.count && !track.embedding.isEmpty
            ? zip(track.embedding, observation.embedding).reduce(0) { $0 + $1.0 * $1.1 } : nil
        let overlapping = iou >= options.minimumIoU && (cosine ?? 1) >= options.minimumCosine
        let reidentified = (cosine ?? -1) >= options.reidentifyCosine
        guard overlapping || reidentified else { return nil }
        let w = cosine == nil ? 0 : options.embeddingWeight
        return 1 - ((1 - w) * iou + w * Double(max(cosine ?? 0, 0)))
    }

    /// Continues `track` with a segment; returns the label event if its label changed.
    private func observe(_ track: inout Track, _ observation: TrackerObservation, _ box: MaskBox, pts: Double) -> TrackEvent? {
        let frames = Double(track.sinceReference + 1)
        if Double(box.area) >= Self.wholeFraction * Double(track.reference.box.area) {
            let (old, new) = (track.reference.box.centroid, box.centroid)
            let measured = (x: (new.x - old.x) / frames, y: (new.y - old.y) / frames)
            track.velocity = (0.5 * track.velocity.x + 0.5 * measured.x, 0.5 * track.velocity.y + 0.5 * measured.y)
            track.reference = (observation.mask, box)
            track.sinceReference = 0
        } else {
            track.sinceReference += 1
        }
        track.mask = observation.mask
        track.box = box
        track.lastPts = pts
        track.unseen = 0
        if track.embedding.count == observation.embedding.count, !track.embedding.isEmpty {
            let mean = zip(track.embedding, observation.embedding).map { 0.5 * $0 + 0.5 * $1 }
            track.embedding = mean.contains { $0 != 0 } ? normalized(mean) : observation.embedding
        } else {
            track.embedding = observation.embedding
        }
        vote(&track, observation.classification)
        let unknown = track.votes.count - 1
        let current = track.label ?? unknown
        let best = votedLabel(track) ?? unknown
        let previous = track.label
        let changed = best != current && track.votes[best] > options.hysteresis * track.votes[current]
        if changed {
            track.label = best == unknown ? nil : best
            track.bestScore = 0
        }
        if let label = track.label, label < observation.classification.probabilities.count {
            track.bestScore = max(track.bestScore, observation.classification.probabilities[label])
        }
        return changed ? event(.label, track, pts: pts, previous: previous) : nil
    }

    /// The label with the most votes (nil: unknown).
    private func votedLabel(_ track: Track) -> Int? {
        let best = track.votes.indices.max { track.votes[$0] < track.votes[$1] }
        return best.flatMap { $0 < track.votes.count - 1 ? $0 : nil }
    }

    /// Decays the votes and adds a segment's: its probabilities, or a whole vote for unknown.
    private func vote(_ track: inout Track, _ classification: Classification) {
        if track.votes.count != classification.probabilities.count + 1 {
            track.votes = [Float](repeating: 0, count: classification.probabilities.count + 1)
        }
        for i in track.votes.indices { track.votes[i] *= options.voteDecay }
        if classification.label == nil {
            track.votes[track.votes.count - 1] += 1
        } else {
            for (i, p) in classification.probabilities.enumerated() { track.votes[i] += p }
        }
    }
}
