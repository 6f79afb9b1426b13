// Segment-text pairs, the USE data pipeline's output: JSON lines
//
//     {"image": "relative/path.jpg", "segmentation": COCO RLE, "texts": [...], "granularity": "object"|"part"}
//
// (`docs/pairs.schema.json`). The segmentation is `{"size": [h, w], "counts": ...}`, counts
// compressed (a string, pycocotools') or not (a list of run lengths).
import Foundation
import SegwatchSAM

public struct SegmentTextPair: Sendable {
    public var image: String
    public var mask: RLE
    public var texts: [String]
    public var granularity: String?
    /// The line it was read from (1-based).
    public var line: Int

    public init(image: String, mask: RLE, texts: [String], granularity: String? = nil, line: Int = 0) {
        (self.image, self.mask, self.texts, self.granularity, self.line) = (image, mask, texts, granularity, line)
    }

    /// The pair's JSON line.
    public var json: [String: Any] {
        var object: [String: Any] = ["image": image, "texts": texts,
                                     "segmentation": ["size": [mask.height, mask.width], "counts": rleToString(mask)]]
        if let granularity { object["granularity"] = granularity }
        return object
    }
}

/// Reads a pairs file: every valid line, and a message naming each invalid one (its line
/// number and what was expected).
public func readSegmentTextPairs(_ path: String) throws(PipelineError) -> (pairs: [SegmentTextPair], problems: [String]) {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw .unusable(path: path, reason: "cannot read: \(error.localizedDescription)") }
    var pairs: [SegmentTextPair] = [], problems: [String] = []
    for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { continue }
        let number = index + 1
        func problem(_ reason: String) { problems.append("\(path):\(number): \(reason)") }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
            problem("not a JSON object"); continue
        }
        guard let image = object["image"] as? String, !image.isEmpty else { problem("no \"image\" (a path relative to --images)"); continue }
        guard let texts = object["texts"] as? [String], !texts.isEmpty, texts.allSatisfy({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            problem("no \"texts\": a pair needs at least one non-empty description"); continue
        }
        guard let segmentation = object["segmentation"] as? [String: Any], let size = segmentation["size"] as? [Int], size.count == 2,
              size[0] > 0, size[1] > 0, size[0] * size[1] <= 1 << 28 else {
            problem("no \"segmentation\" with \"size\": [height, width]"); continue
        }
        let mask: RLE?
        if let counts = segmentation["counts"] as? String {
            mask = rleFromString(counts, height: size[0], width: size[1])
        } else if let counts = segmentation["counts"] as? [Int], counts.allSatisfy({ $0 >= 0 }), counts.reduce(0, +) == size[0] * size[1] {
            mask = RLE(height: size[0], width: size[1], counts: counts)
        } else {
            mask = nil
        }
        guard let mask else { problem("its segmentation's counts do not describe a \(size[0])x\(size[1]) mask (COCO RLE)"); continue }
        let granularity = object["granularity"] as? String
        guard granularity == nil || ["object", "part"].contains(granularity!) else {
            problem("\"granularity\" is '\(granularity!)'; expected object or part"); continue
        }
        pairs.append(SegmentTextPair(image: image, mask: mask, texts: texts, granularity: granularity, line: number))
    }
    return (pairs, problems)
}

/// `items` grouped by picture, the pictures in the order the items first name them: what
/// `pairs --boxes` and `features` walk, one picture (one encoder pass) at a time.
public func groupedByImage<T>(_ items: [T], image: (T) -> String) -> [(image: String, items: [T])] {
    var order: [String] = [], groups: [String: [T]] = [:]
    for item in items {
        let name = image(item)
        if groups[name] == nil { order.append(name) }
        groups[name, default: []].append(item)
    }
    return order.map { ($0, groups[$0]!) }
}
