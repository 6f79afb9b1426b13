// Crops and point grids of the automatic mask generator: ports `generate_crop_boxes`,
// `build_point_grid`, `build_all_layer_point_grids`, `is_box_near_crop_edge`,
// `uncrop_boxes_xyxy` and `uncrop_points` of segment_anything/utils/amg.py (PyPI
// segment-anything 1.0), with numpy 2.4.6 `linspace` and Python float arithmetic.

/// `generate_crop_boxes(im_size, n_layers, overlap_ratio)`: the crop boxes (XYXY) and the layer
/// of each.
///
/// Layer 0 is the whole image; layer `i >= 1` has `2^i x 2^i` crops overlapping by
/// `int(overlap_ratio * short_side * (2 / 2^i))` pixels, each `ceil((overlap * (n - 1) + len) /
/// n)` long, starting at `int((crop_len - overlap) * k)` and clipped to the image. Crops are
/// listed x-major (`itertools.product(x0s, y0s)`): all crops of the first column first.
/// The arithmetic is Python's: double precision, `int()` truncating toward zero.
public func generateCropBoxes(imageHeight: Int, imageWidth: Int, layers: Int,
                              overlapRatio: Double) -> (boxes: [[Int]], layerIndices: [Int]) {
    var boxes: [[Int]] = [[0, 0, imageWidth, imageHeight]]
    var layerIndices = [0]
    let shortSide = min(imageHeight, imageWidth)

    func cropLength(_ length: Int, _ crops: Int, _ overlap: Int) -> Int {
        Int((Double(overlap * (crops - 1) + length) / Double(crops)).rounded(.up))
    }

    for layer in 0..<max(layers, 0) {  // Python's range(n_layers): empty when negative
        let cropsPerSide = 1 << (layer + 1)
        let overlap = Int(overlapRatio * Double(shortSide) * (2 / Double(cropsPerSide)))
        let cropWidth = cropLength(imageWidth, cropsPerSide, overlap)
        let cropHeight = cropLength(imageHeight, cropsPerSide, overlap)
        let x0s = (0..<cropsPerSide).map { (cropWidth - overlap) * $0 }
        let y0s = (0..<cropsPerSide).map { (cropHeight - overlap) * $0 }
        for x0 in x0s {
            for y0 in y0s {
                boxes.append([x0, y0, min(x0 + cropWidth, imageWidth), min(y0 + cropHeight, imageHeight)])
                layerIndices.append(layer + 1)
            }
        }
    }
    return (boxes, layerIndices)
}

/// numpy `linspace(start, stop, num)` (endpoint=True) to the bit: `step = (stop - start) / (num -
/// 1)`, values `i * step + start`, the last value set to `stop` exactly; `[start]` for one value.
/// The AMG's point coordinates must match the reference within 0.001 px, and a different
/// formula (e.g. `start + i * (stop - start) / (num - 1)`) differs in the last bits.
public func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
    precondition(count >= 0, "linspace count \(count)")
    guard count > 1 else { return count == 1 ? [start] : [] }
    let divisor = Double(count - 1)
    let delta = stop - start
    let step = delta / divisor
    var values = (0..<count).map { i -> Double in
        // numpy divides first when the step underflows to 0.
        step == 0 ? Double(i) / divisor * delta + start : Double(i) * step + start
    }
    values[count - 1] = stop
    return values
}

/// `build_point_grid(n_per_side)`: `n x n` points `(x, y)` in `[0, 1]^2` at `linspace(1/(2n),
/// 1 - 1/(2n), n)`, x fastest (row by row).
///
/// `n` must be at least 1 (the reference divides by zero for 0).
public func buildPointGrid(pointsPerSide n: Int) -> [SIMD2<Double>] {
    precondition(n >= 1, "a point grid needs at least 1 point per side, got \(n)")
    let offset = 1 / Double(2 * n)
    let side = linspace(offset, 1 - offset, count: n)
    var points: [SIMD2<Double>] = []
    points.reserveCapacity(n * n)
    for y in side {
        for x in side { points.append(SIMD2(x, y)) }
    }
    return points
}

/// `build_all_layer_point_grids(n_per_side, n_layers, scale_per_layer)`: the grid of layer `i`
/// has `int(n_per_side / scale_per_layer^i)` points per side (Python true division, truncated).
public func buildAllLayerPointGrids(pointsPerSide: Int, layers: Int, scalePerLayer: Int) -> [[SIMD2<Double>]] {
    (0..<max(layers + 1, 0)).map { layer in
        var scale = 1
        for _ in 0..<layer { scale *= scalePerLayer }
        return buildPointGrid(pointsPerSide: Int(Double(pointsPerSide) / Double(scale)))
    }
}

/// `is_box_near_crop_edge(boxes, crop_box, orig_box, atol)` for one box: whether the mask box
/// (XYXY, crop coordinates) comes within `atol` of an edge of the crop that is not an edge of
/// the image.
///
/// The box is uncropped in integers (`uncrop_boxes_xyxy` on the int64 boxes), then compared in
/// float32 after `.float()`, with `torch.isclose(a, b, atol, rtol=0)`: `|a - b| <= atol`, so a
/// box exactly 20 px from an inner crop edge is near it. Coordinate `k` of the box is compared
/// with coordinate `k` of each box only (x0 with the crop's x0, ...), as the reference does.
public func isBoxNearCropEdge(_ box: [Int], cropBox: [Int], origBox: [Int], atol: Float = 20) -> Bool {
    precondition(box.count == 4 && cropBox.count == 4 && origBox.count == 4, "boxes must have 4 values")
    let uncropped = uncropBoxXYXY(box, cropBox: cropBox)
    for k in 0..<4 {
        let coordinate = Float(uncropped[k])
        let nearCrop = isClose(coordinate, Float(cropBox[k]), atol: atol)
        let nearImage = isClose(coordinate, Float(origBox[k]), atol: atol)
        if nearCrop && !nearImage { return true }
    }
    return false
}

/// `torch.isclose(a, b, atol=atol, rtol=0)` in float32: equal, or a finite `|a - b| <= atol`.
private func isClose(_ a: Float, _ b: Float, atol: Float) -> Bool {
    if a == b { return true }
    let error = abs(a - b)
    return error.isFinite && error <= atol
}

/// `uncrop_boxes_xyxy(boxes, crop_box)` for one box: moves an XYXY box from crop to image
/// coordinates by adding the crop's `(x0, y0)` to both corners.
public func uncropBoxXYXY(_ box: [Int], cropBox: [Int]) -> [Int] {
    precondition(box.count == 4 && cropBox.count == 4, "boxes must have 4 values")
    let x0 = cropBox[0], y0 = cropBox[1]
    return [box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0]
}

/// `uncrop_points(points, crop_box)`: moves `(x, y)` points from crop to image coordinates
/// (float64, as the reference adds the int64 offset to float64 points).
public func uncropPoints(_ points: [SIMD2<Double>], cropBox: [Int]) -> [SIMD2<Double>] {
    precondition(cropBox.count == 4, "crop box with \(cropBox.count) values, expected 4")
    let offset = SIMD2(Double(cropBox[0]), Double(cropBox[1]))
    return points.map { $0 + offset }
}
