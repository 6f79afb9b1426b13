import SegwatchMedia
import SegwatchPipeline
import SegwatchSAM

/// `--video-out`: every source frame, at the source's size and timestamps, drawn with the
/// latest analyzed frame's segments (translucent fills, outlines, and each one's track id,
/// label and score in the text of `segwatch label --overlay`).
///
/// The analyzed frame itself is drawn at full strength; the frames after it, whose masks were
/// carried over from that earlier analysis, are drawn faint (fill and label box at a third of
/// the opacity), so a viewer can tell a mask that fits this frame from one that may lag.
final class AnnotatedVideo {
    private let encoder: VideoEncoder
    private let font: Font
    private var segments: [OverlaySegment] = []
    /// The segments drawn, once per analysis: on the analyzed frame, and faint on later ones.
    private var fresh: OverlayLayer?
    private var stale: OverlayLayer?
    /// Whether the next frame is the analyzed one (`show` comes just before it).
    private var nextIsAnalyzed = false

    init(path: String, width: Int, height: Int, fps: Double, font: String) throws {
        encoder = try VideoEncoder(path: path, width: width, height: height, frameRate: fps)
        self.font = try Font(path: font, pixelSize: max(12, min(width, height) / 30))
    }

    var framesWritten: Int { encoder.framesWritten }

    /// The segments drawn from now on. Objects are colored by track, so an object keeps its
    /// color while its label is voted on, and labeled with the track's voted label (as the
    /// `frame` and `track` events are); stuff by label.
    func show(_ analysis: FrameAnalysis, names: [String]) {
        (fresh, stale, nextIsAnalyzed) = (nil, nil, true)
        segments = analysis.segments.map { segment in
            let result = segment.classification
            guard let track = segment.track else {
                return OverlaySegment(mask: segment.mask.rle, text: overlayText(result.label, result.score, names), colorIndex: result.label)
            }
            let score = segment.trackLabel.map { result.probabilities[$0] } ?? result.score
            return OverlaySegment(mask: segment.mask.rle, text: "#\(track) " + overlayText(segment.trackLabel, score, names), colorIndex: track)
        }
    }

    func append(_ frame: VideoFrame) throws {
        defer { nextIsAnalyzed = false }
        let drawable = segments.allSatisfy { $0.mask.height == frame.height && $0.mask.width == frame.width }
        guard !segments.isEmpty, drawable else { return try encoder.append(frame) }
        let layer: OverlayLayer
        if nextIsAnalyzed {
            if fresh == nil { fresh = try OverlayLayer(height: frame.height, width: frame.width, segments: segments, font: font) }
            layer = fresh!
        } else {
            if stale == nil {
                var style = OverlayStyle()
                style.opacity /= 3
                style.boxOpacity /= 3
                stale = try OverlayLayer(height: frame.height, width: frame.width, segments: segments, font: font, style: style)
            }
            layer = stale!
        }
        let drawn = try layer.apply(to: RGBImage(frame))
        try drawn.pixels.withUnsafeBytes { bytes in
            try encoder.append(pixels: bytes.baseAddress!, width: frame.width, height: frame.height, rowBytes: 3 * frame.width,
                               layout: .rgb24, pts: frame.pts)
        }
    }

    /// Flushes the encoder and writes the trailer: a playable file.
    func finish() throws {
        try encoder.finish()
    }
}

/// A segment's text on overlays: its label and score ("car 0.87"), or "unknown".
public func overlayText(_ label: Int?, _ score: Float, _ names: [String]) -> String {
    guard let label else { return "unknown" }
    return String(format: "%@ %.2f", names[label], score)
}
