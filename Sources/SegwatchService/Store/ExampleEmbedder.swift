import SegwatchBackends
import Foundation
import SegwatchCLIP
import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor

/// Search by example (`segwatch search --image`): a picture, or the segment SAM finds in a box
/// of it, embedded exactly as a run embeds the segments of its frames (`SegmentEncoding`: the
/// same CLIP, dense grid and head), so that its cosine with a track's embedding means what a
/// text query's does.
public struct ExampleEmbedder: Sendable {
    let encoding: SegmentEncoding<ComputeBackend>
    let sam: Sam<ComputeBackend>?

    /// CLIP from `clip` at `clipSize` on the short side, the head at `head` (with DINOv2 at
    /// `dino` for the USE head), and SAM from `sam` for box queries.
    public init(clip: String, head: String?, dino: String?, sam: String?, backend: ComputeBackend, clipSize: Int, dinoSize: Int,
                warn: (String) -> Void = { _ in }) throws {
        let model = try CLIP.load(clip, backend: backend)
        let learned = try ModelSet.loadHead(head, dino: dino, clip: model, clipPath: clip, backend: backend, warn: warn)
        encoding = SegmentEncoding(clip: model, backend: backend, head: learned, clipSize: clipSize, dinoSize: dinoSize)
        self.sam = try sam.map { try Sam(contentsOf: $0, backend: backend) }
    }

    /// The unit embedding of `picture` whole, or of the segment SAM finds for the box prompt `box`
    /// (x0, y0, x1, y1 in pixels; SAM's single-mask output).
    public func embed(_ picture: RGBImage, box: (x0: Double, y0: Double, x1: Double, y1: Double)? = nil) throws -> [Float] {
        let mask: BinaryMask
        if let box {
            guard let sam else { throw ServiceError("a box query is segmented by SAM: give --sam") }
            guard box.x0 < box.x1, box.y0 < box.y1, box.x0 >= 0, box.y0 >= 0, box.x1 <= Double(picture.width), box.y1 <= Double(picture.height) else {
                throw ServiceError("the box \(box) is not inside the \(picture.width)x\(picture.height) picture with x0 < x1 and y0 < y1")
            }
            let predictor = SamPredictor(model: sam)
            let prediction = try sam.backend.runOnHost { () throws -> SamPrediction in
                try predictor.predict(try predictor.setImage(picture), box: box, multimask: false)
            }
            let logits = prediction.maskLogits.contiguous().toArray()
            mask = BinaryMask(height: picture.height, width: picture.width,
                              pixels: logits.prefix(picture.height * picture.width).map { $0 > 0 ? 1 : 0 })
        } else {
            mask = BinaryMask(height: picture.height, width: picture.width, pixels: [UInt8](repeating: 1, count: picture.height * picture.width))
        }
        guard let embedding = try encoding.embed(picture, masks: [maskToRLE(mask)]).first ?? nil else {
            throw ServiceError("SAM found no segment in the box \(box.map { "\($0)" } ?? "")")
        }
        return embedding
    }
}
