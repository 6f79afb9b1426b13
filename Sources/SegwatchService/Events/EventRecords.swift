// The records of the event stream (docs/events.schema.json): one JSON object per line, `frame`
// for each analyzed frame, `track` for a track's start, change of label and end, `source` for
// a live input's connection state. Every record carries its camera (`source`), the wall clock
// (`time`) and a unique `event_id`, stamped by `EventLog` as it writes the line.
import Foundation
import SegwatchMedia
import SegwatchPipeline
import SegwatchSAM

/// A record of the event stream, stamped by `EventLog` with its time and id.
public protocol EventRecord: Encodable, Sendable {
    var source: String { get }
    /// ISO 8601 UTC (`isoTime`), set when the record is written.
    var time: String { get set }
    /// Unique across cameras and runs, set when the record is written.
    var event_id: String? { get set }
}

/// A `frame` event: an analyzed frame and its segments.
///
/// Labels follow one rule, shared with the `track` events and the annotated video: a tracked
/// segment's `label` is its track's voted label, and `score` this segment's probability of it
/// (its best probability when the label is "unknown"); `labels` are this segment's own top
/// labels and `segment_label` its own best one this frame, which one noisy frame can flip.
public struct FrameRecord: EventRecord {
    public var type = "frame"
    public var source: String
    public var time = ""
    public var event_id: String? = nil
    public var frame: Int
    public var pts: Double
    public var width: Int
    public var height: Int
    public var keyframe: Bool
    public var segments: [FrameSegment]
    public var stuff: [StuffRecord]

    public init(source: String, frame: Int, pts: Double, width: Int, height: Int, analysis: FrameAnalysis, names: [String]) {
        (self.source, self.frame, self.pts, self.width, self.height) = (source, frame, pts, width, height)
        keyframe = analysis.keyframe != nil
        segments = analysis.segments.compactMap { segment in segment.track.map { FrameSegment(segment, track: $0, names: names) } }
        var stuffArea: [Int: Int] = [:]
        for segment in analysis.segments where segment.track == nil {
            if let label = segment.classification.label { stuffArea[label, default: 0] += segment.mask.area }
        }
        stuff = stuffArea.keys.sorted().map { StuffRecord(label: names[$0], area: stuffArea[$0]!) }
    }
}

public struct FrameSegment: Encodable, Sendable {
    public var track: Int
    public var label: String
    public var score: Double
    public var segment_label: String
    public var labels: [[LabelScoreValue]]
    public var scored_pts: Double
    public var bbox: [Int]
    public var area: Int
    public var predicted_iou: Double
    public var stability: Double
    public var rle: CocoRLE

    init(_ segment: AnalyzedSegment, track: Int, names: [String]) {
        let (mask, result) = (segment.mask, segment.classification)
        self.track = track
        label = labelName(segment.trackLabel, names)
        score = fourDecimals(segment.trackLabel.map { result.probabilities[$0] } ?? result.score)
        segment_label = labelName(result.label, names)
        labels = result.top.map { [.name(names[$0.label]), .probability($0.probability)] }
        scored_pts = segment.scoredPts
        bbox = boxXYXYToXYWH(mask.box)
        area = mask.area
        predicted_iou = fourDecimals(mask.predictedIou)
        stability = fourDecimals(mask.stabilityScore)
        rle = CocoRLE(mask.rle)
    }
}

public struct StuffRecord: Encodable, Sendable {
    public var label: String
    public var area: Int
}

/// A `track` event: a track started, its voted label changed, or it ended.
public struct TrackRecord: EventRecord {
    public var type = "track"
    public var source: String
    public var time = ""
    public var event_id: String? = nil
    public var event: String
    public var track: Int
    public var label: String
    public var previous_label: String?
    public var pts: Double
    public var best_score: Double
    public var lifetime: Double?

    public init(_ e: TrackEvent, source: String, names: [String]) {
        self.source = source
        event = e.kind.rawValue
        track = e.track
        label = labelName(e.label, names)
        previous_label = e.kind == .label ? labelName(e.previousLabel, names) : nil
        pts = e.pts
        best_score = fourDecimals(e.bestScore)
        lifetime = e.kind == .end ? e.lifetime : nil
    }
}

/// A `source` event: a live source's change of connection state.
public struct SourceRecord: EventRecord {
    public var type = "source"
    public var source: String
    public var time = ""
    public var event_id: String? = nil
    public var state: String
    public var error: String?
    public var attempt: Int?
    public var delay: Double?

    public init(_ state: SourceState, source: String) {
        self.source = source
        switch state {
        case .connecting(let attempt):
            self.state = "connecting"
            self.attempt = attempt > 0 ? attempt : nil
        case .connected:
            self.state = "connected"
        case .disconnected(let error):
            self.state = "disconnected"
            self.error = error
        case .reconnecting(let attempt, let delay, let error):
            (self.state, self.attempt, self.delay, self.error) = ("reconnecting", attempt, fourDecimals(delay), error)
        case .stopped(let error):
            (self.state, self.error) = ("ended", error)
        }
    }

    /// The line a log shows for this change: `cam1: reconnecting (attempt 3 in 4.0 s): Connection refused`.
    public var logText: String {
        var text = "\(source): \(state)"
        if let attempt, let delay { text += String(format: " (attempt %d in %.1f s)", attempt, delay) }
        if let error { text += ": " + error }
        return text
    }
}
