import SegwatchBackends
import Foundation
import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor

/// `segwatch pairs --boxes`: the box-text pairs of `boxes` (JSON lines, `readBoxTexts`) over the
/// pictures in `images`, made into segment-text pairs through SAM (`boxTextPairs`), one picture
/// (one encoder pass) at a time. A line that cannot be read, or a picture that cannot be
/// decoded, is a problem: named in the result, or thrown at once with `strict`.
/// `progress(done, total)` follows the pictures.
public func boxPairs(_ boxes: String, images: String, sam: String, backend: ComputeBackend, minRegionArea: Int, nms: Double, strict: Bool,
                     progress: (Int, Int) -> Void = { _, _ in }) throws -> (pairs: [SegmentTextPair], problems: [String]) {
    let (read, found) = try readBoxTexts(boxes)
    var problems = found
    if let first = problems.first, strict { throw ServiceError(first) }
    let predictor = SamPredictor(model: try Sam(contentsOf: sam, backend: backend))
    let order = groupedByImage(read, image: \.image)
    var pairs: [SegmentTextPair] = []
    try backend.runOnHost {
        for (index, (image, items)) in order.enumerated() {
            progress(index, order.count)
            let picture: RGBImage
            do { picture = try loadRGBImage(URL(fileURLWithPath: images).appendingPathComponent(image).path, frame: 0) } catch {
                let message = "\(boxes):\(items[0].line): \(error)"
                if strict { throw ServiceError(message) }
                problems.append("\(message): its \(items.count) boxes")
                continue
            }
            pairs += try boxTextPairs(items, picture: picture, predictor: predictor, minRegionArea: minRegionArea, nms: nms)
        }
    }
    return (pairs, problems)
}
