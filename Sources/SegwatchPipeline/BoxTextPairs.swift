// Segment-text pairs from box-text pairs (any grounding model's output: an image, a box, a
// phrase): SAM prompted with each box, the multimask output with the best predicted IoU kept,
// small regions cleaned up, and duplicates (mask IoU at or above a threshold) merged into one
// segment holding all their texts.
import Foundation
import SegwatchSAM
import SegwatchTensor

/// One line of a box file: `{"image", "box": [x0, y0, x1, y1], "text" or "texts", "granularity"}`.
public struct BoxText: Sendable {
    public var image: String
    public var box: (x0: Double, y0: Double, x1: Double, y1: Double)
    public var texts: [String]
    public var granularity: String?
    public var line: Int
}

/// Reads a box file: every valid line, and a message naming each invalid one.
public func readBoxTexts(_ path: String) throws(PipelineError) -> (boxes: [BoxText], problems: [String]) {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw .unusable(path: path, reason: "cannot read: \(error.localizedDescription)") }
    var boxes: [BoxText] = [], problems: [String] = []
    for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { continue }
        func problem(_ reason: String) { problems.append("\(path):\(index + 1): \(reason)") }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else { problem("not a JSON object"); continue }
        guard let image = object["image"] as? String, !image.isEmpty else { problem("no \"image\""); continue }
        guard let box = object["box"] as? [Double], box.count == 4, box.allSatisfy(\.isFinite), box[2] > box[0], box[3] > box[1] else {
            problem("no \"box\": [x0, y0, x1, y1] with x1 > x0 and y1 > y0, in pixels"); continue
        }
        let texts = (object["texts"] as? [String]) ?? (object["text"] as? String).map { [$0] } ?? []
        guard !texts.isEmpty, texts.allSatisfy({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            problem("no \"text\" (or \"texts\"): a box needs a non-empty phrase"); continue
        }
        let granularity = object["granularity"] as? String
        guard granularity == nil || ["object", "part"].contains(granularity!) else { problem("\"granularity\" must be object or part"); continue }
        boxes.append(BoxText(image: image, box: (box[0], box[1], box[2], box[3]), texts: texts, granularity: granularity, line: index + 1))
    }
    return (boxes, problems)
}

/// The pairs of one picture's boxes: SAM's best-scored multimask output per box, holes and
/// islands under `minRegionArea` pixels removed, then masks whose IoU with a better-scored one
/// is at least `nms` merged into it (their texts added to its own, without repeats).
public func boxTextPairs<B: Backend>(_ boxes: [BoxText], picture: RGBImage, predictor: SamPredictor<B>, minRegionArea: Int,
                                     nms: Double) throws -> [SegmentTextPair] {
    let features = try predictor.setImage(picture)
    var candidates: [(mask: BinaryMask, score: Float, item: BoxText)] = []
    for item in boxes {
        let prediction = try predictor.predict(features, box: item.box, multimask: true)
        let scores = prediction.iouPredictions.toArray()
        let best = scores.indices.max { scores[$0] < scores[$1] }!
        let logits = prediction.maskLogits.selected(0, best).contiguous().toArray()
        var mask = BinaryMask(height: picture.height, width: picture.width, pixels: logits.map { $0 > 0 ? 1 : 0 })
        if minRegionArea > 0 {
            mask = removeSmallRegions(mask, areaThreshold: Double(minRegionArea), mode: .holes).mask
            mask = removeSmallRegions(mask, areaThreshold: Double(minRegionArea), mode: .islands).mask
        }
        candidates.append((mask, scores[best], item))
    }
    var kept: [(mask: BinaryMask, item: BoxText)] = []
    for candidate in candidates.indices.sorted(by: { candidates[$0].score > candidates[$1].score }).map({ candidates[$0] }) {
        if let i = kept.firstIndex(where: { pixelIoU($0.mask, candidate.mask) >= nms }) {
            kept[i].item.texts += candidate.item.texts.filter { !kept[i].item.texts.contains($0) }
        } else {
            kept.append((candidate.mask, candidate.item))
        }
    }
    return kept.sorted { $0.item.line < $1.item.line }.map {
        SegmentTextPair(image: $0.item.image, mask: maskToRLE($0.mask), texts: $0.item.texts, granularity: $0.item.granularity, line: $0.item.line)
    }
}

/// Intersection over union of two masks of one frame (1 for two empty masks).
func pixelIoU(_ a: BinaryMask, _ b: BinaryMask) -> Double {
    var intersection = 0, union = 0
    for (p, q) in zip(a.pixels, b.pixels) {
        if p != 0 && q != 0 { intersection += 1 }
        if p != 0 || q != 0 { union += 1 }
    }
    return union == 0 ? 1 : Double(intersection) / Double(union)
}
