// Stability score of one mask: ports `calculate_stability_score` of
// segment_anything/utils/amg.py (PyPI segment-anything 1.0).

/// `calculate_stability_score(masks, mask_threshold, threshold_offset)` for one mask: the IoU
/// of the masks thresholded at `mask_threshold + offset` and `mask_threshold - offset`, which is
/// `count(logits > hi) / count(logits > lo)` since the first mask lies inside the second.
///
/// - `logits`: `[height, width]`, row-major.
/// - Each threshold is summed in double precision then compared in float32, as torch compares a
///   float32 tensor with a Python float.
/// - The counts are the reference's: per-row sums in int16 (wrapping past 32767 set pixels in a
///   row, which no image this size reaches), totals in int32, then float32 division.
/// - With no logit above the low threshold the score is 0/0 = NaN, as in torch; NaN fails the
///   AMG's `stability_score >= stability_score_thresh` filter, so such masks are dropped.
public func calculateStabilityScore(logits: UnsafeBufferPointer<Float>, height: Int, width: Int,
                                    maskThreshold: Double, thresholdOffset: Double) -> Float {
    precondition(logits.count == height * width, "logits \(height)x\(width) with \(logits.count) values")
    let high = Float(maskThreshold + thresholdOffset)
    let low = Float(maskThreshold - thresholdOffset)
    var intersections: Int32 = 0
    var unions: Int32 = 0
    for y in 0..<height {
        var rowHigh = 0, rowLow = 0
        for value in logits[(y * width)..<((y + 1) * width)] {
            if value > high { rowHigh += 1 }
            if value > low { rowLow += 1 }
        }
        intersections &+= Int32(Int16(truncatingIfNeeded: rowHigh))
        unions &+= Int32(Int16(truncatingIfNeeded: rowLow))
    }
    return Float(intersections) / Float(unions)
}

/// `calculate_stability_score` for logits in an array; see the buffer form.
public func calculateStabilityScore(logits: [Float], height: Int, width: Int,
                                    maskThreshold: Double, thresholdOffset: Double) -> Float {
    logits.withUnsafeBufferPointer {
        calculateStabilityScore(logits: $0, height: height, width: width,
                                maskThreshold: maskThreshold, thresholdOffset: thresholdOffset)
    }
}
