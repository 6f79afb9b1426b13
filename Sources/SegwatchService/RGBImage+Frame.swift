import SegwatchMedia
import SegwatchSAM

extension RGBImage {
    /// A decoded 8-bit RGB frame as the models take it.
    public init(_ frame: VideoFrame) {
        self.init(height: frame.height, width: frame.width, pixels: frame.packedBytes())
    }
}
