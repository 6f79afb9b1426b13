import SegwatchMedia
import SegwatchPipeline
import SegwatchSAM

/// `run --video-out`: every source frame, at the source's size and timestamps, drawn with the
/// latest analyzed frame's segments (translucent fills, outlines, and each one's track id,
/// label and score in the text of `segwatch label --overlay`).
final class AnnotatedVideo {
    private let encoder: VideoEncoder
    private let font: Font
    private var segments: [OverlaySegment] = []
    /// The segments drawn, once per analysis, for every frame until the next one.
    private var layer: OverlayLayer?

    init(path: String, width: Int, height: Int, fps: Double, font: String) throws {
        encoder = try VideoEncoder(path: path, width: width, height: height, frameRate: fps)
        self.font = try Font(path: font, pixelSize: max(12, min(width, height) / 30))
    }

    var framesWritten: Int { encoder.framesWritten }

    /// The segments drawn from now on. Objects are colored by track, so an object keeps its
    /// color while its label is voted on; stuff by label.
    func show(_ analysis: FrameAnalysis, names: [String]) {
        layer = nil
        segments = analysis.segments.map { segment in
            let label = overlayText(segment.classification, names)
            guard let track = segment.track else {
                return OverlaySegment(mask: segment.mask.rle, text: label, colorIndex: segment.classification.label)
            }
            return OverlaySegment(mask: segment.mask.rle, text: "#\(track) \(label)", colorIndex: track)
        }
    }

    func append(_ frame: VideoFrame) throws {
        let drawable = segments.allSatisfy { $0.mask.height == frame.height && $0.mask.width == frame.width }
        guard !segments.isEmpty, drawable else { return try encoder.append(frame) }
        if layer == nil { layer = try OverlayLayer(height: frame.height, width: frame.width, segments: segments, font: font) }
        let drawn = try layer!.apply(to: RGBImage(frame))
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
