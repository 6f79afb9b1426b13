import SegwatchMedia
import SegwatchSAM

extension RGBImage {
    /// A decoded 8-bit RGB frame as the models take it.
    public init(_ frame: VideoFrame) {
        self.init(height: frame.height, width: frame.width, pixels: frame.packedBytes())
    }
}

/// Decodes one RGB picture from anything FFmpeg reads: an image file, or frame `frame` of a video.
public func loadRGBImage(_ path: String, frame: Int) throws -> RGBImage {
    let decoder = try VideoDecoder(InputSpec(path), options: DecodeOptions(layout: .rgb24))
    for _ in 0..<frame {
        guard try decoder.skip() else {
            throw MediaError.invalidArgument(input: path, reason: "--frame \(frame) is past the end: it has \(decoder.framesDecoded) frames")
        }
    }
    guard let picture = try decoder.next() else {
        throw MediaError.invalidArgument(input: path, reason: frame == 0 ? "it holds no picture" : "--frame \(frame) is past the end: it has \(decoder.framesDecoded) frames")
    }
    return RGBImage(picture)
}
