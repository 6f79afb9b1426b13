// Box non-maximum suppression as the AMG calls it: ports torchvision 0.29.2
// `torchvision.ops.boxes.batched_nms` and the CPU `nms` kernel it runs
// (torchvision/csrc/ops/cpu/nms_kernel.cpp), in float32 like the AMG's `boxes.float()`.

/// `batched_nms(boxes, scores, idxs, iou_threshold)`: the indices of the boxes kept by
/// greedy NMS run separately per category, best score first.
///
/// - `boxes`: `[n][4]` XYXY (the AMG passes its integer mask boxes as float32).
/// - `scores`, `categories`: `[n]`; boxes of different categories never suppress each other.
/// - A box is suppressed when its IoU with a kept, better-ranked box of its category is
///   strictly greater than `iouThreshold`, so at threshold 1.0 identical boxes (IoU exactly 1)
///   all survive. The IoU is the kernel's float32 arithmetic: areas `(x2 - x1) * (y2 - y1)`,
///   `inter / (area_i + area_j - inter)`, compared with the threshold in double precision as
///   C++ promotes `float > double`.
///
/// Ranking is a stable sort by descending score (equal scores keep index order), with NaN
/// ranked above every number as torch's descending sort does: a NaN-scored box is kept and
/// suppresses its overlaps, nothing traps. The result lists the kept boxes in that ranking.
///
/// Which torchvision path this reproduces: `batched_nms` runs `_batched_nms_coordinate_trick`
/// up to 1000 boxes (`numel() <= 4000` on CPU) and `_batched_nms_vanilla` above.
/// - Kept set: per-category greedy NMS, as the vanilla path. The coordinate trick shifts each
///   category by `idx * (max + 1)` instead, which keeps the same boxes for non-negative
///   coordinates up to float32 rounding of the shifted values, and lets categories overlap
///   when coordinates are negative, so it is not copied. In the AMG every category is 0: the
///   shift is exactly 0 and the kept set is torchvision's bit for bit on both paths.
/// - Order: the coordinate-trick order, one stable descending sort (what the `nms` kernel
///   returns). The vanilla path re-sorts its kept indices with torch's default *unstable*
///   sort, so past 1000 boxes torchvision may list equal scores differently (measured with
///   torch 2.15: same set, ties reordered). For the AMG that changes, only past 1000
///   candidates, the listing order of equal-score masks (crop NMS scores by crop, small-region
///   NMS by 0/1) and, through it, which of two equal-score overlapping masks a later NMS keeps;
///   matching that would need torch's sort itself. The fixture pairs masks by IoU, not position.
public func batchedNMS(boxes: [[Float]], scores: [Float], categories: [Int], iouThreshold: Double) -> [Int] {
    precondition(boxes.count == scores.count && boxes.count == categories.count,
                 "batchedNMS: \(boxes.count) boxes, \(scores.count) scores, \(categories.count) categories")
    for box in boxes { precondition(box.count == 4, "batchedNMS: box with \(box.count) values, expected 4") }
    let order = boxes.indices.sorted { a, b in
        let sa = scores[a], sb = scores[b]
        if sa.isNaN || sb.isNaN {
            if sa.isNaN != sb.isNaN { return sa.isNaN }
            return a < b
        }
        return sa != sb ? sa > sb : a < b
    }
    let areas = boxes.map { ($0[2] - $0[0]) * ($0[3] - $0[1]) }
    var suppressed = [Bool](repeating: false, count: boxes.count)
    var keep: [Int] = []
    for (rank, i) in order.enumerated() where !suppressed[i] {
        keep.append(i)
        let boxI = boxes[i]
        for j in order[(rank + 1)...] where !suppressed[j] && categories[j] == categories[i] {
            let boxJ = boxes[j]
            // std::max(a, b) is `a < b ? b : a` and std::min(a, b) is `b < a ? b : a`; spelled
            // out so NaN coordinates behave as in the kernel.
            let xx1 = boxI[0] < boxJ[0] ? boxJ[0] : boxI[0]
            let yy1 = boxI[1] < boxJ[1] ? boxJ[1] : boxI[1]
            let xx2 = boxJ[2] < boxI[2] ? boxJ[2] : boxI[2]
            let yy2 = boxJ[3] < boxI[3] ? boxJ[3] : boxI[3]
            let w = Float(0) < xx2 - xx1 ? xx2 - xx1 : 0
            let h = Float(0) < yy2 - yy1 ? yy2 - yy1 : 0
            let inter = w * h
            let iou = inter / (areas[i] + areas[j] - inter)
            if Double(iou) > iouThreshold { suppressed[j] = true }
        }
    }
    return keep
}
