// The per-pixel label map USE builds from overlapping labeled segments.
import SegwatchSAM

/// Each pixel takes the label whose probability, summed over every segment covering the pixel,
/// is highest (ties: the label listed first); a pixel no voting segment covers is nil (-1 here).
/// `probabilities[s]` is segment s's probability per label, or nil for a segment that does not
/// vote (unknown, or without an embedding).
///
/// Pixels are grouped by the set of segments covering them, and the vote is counted once per
/// set: a frame has far fewer distinct overlaps than pixels, and a 1,000-label vote per pixel
/// would cost more than the models.
public func semanticMap(masks: [RLE], probabilities: [[Float]?], labels: Int, height: Int, width: Int) throws(PipelineError) -> [Int32] {
    guard masks.count == probabilities.count else {
        throw .mismatch("\(masks.count) masks but \(probabilities.count) probability rows")
    }
    // Set ids: 0 is the empty set; each (set, segment) step has one id, so equal sets meet.
    var setOf = [Int32](repeating: 0, count: height * width)
    var members: [[Int]] = [[]]
    var steps: [Int64: Int32] = [:]
    for (s, mask) in masks.enumerated() {
        guard let row = probabilities[s] else { continue }
        guard mask.height == height, mask.width == width else {
            throw .mismatch("mask \(s) is \(mask.width)x\(mask.height); the map is \(width)x\(height)")
        }
        guard row.count == labels else { throw .mismatch("segment \(s) has \(row.count) probabilities for \(labels) labels") }
        var lastFrom: Int32 = -1, lastTo: Int32 = 0
        var position = 0, set = false
        for count in mask.counts {
            if set {
                for p in position..<(position + count) {
                    let pixel = (p % height) * width + p / height  // column-major run, row-major map
                    let from = setOf[pixel]
                    if from != lastFrom {
                        let key = Int64(from) << 32 | Int64(s)
                        if let known = steps[key] {
                            lastTo = known
                        } else {
                            lastTo = Int32(members.count)
                            members.append(members[Int(from)] + [s])
                            steps[key] = lastTo
                        }
                        lastFrom = from
                    }
                    setOf[pixel] = lastTo
                }
            }
            position += count
            set.toggle()
        }
    }
    let winner: [Int32] = members.map { segments in
        guard !segments.isEmpty else { return -1 }
        var votes = [Double](repeating: 0, count: labels)
        for s in segments {
            for (label, probability) in probabilities[s]!.enumerated() { votes[label] += Double(probability) }
        }
        var best = 0
        for label in votes.indices where votes[label] > votes[best] { best = label }
        return Int32(best)
    }
    return setOf.map { winner[Int($0)] }
}
