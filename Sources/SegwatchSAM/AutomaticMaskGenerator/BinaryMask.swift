// Binary masks of the automatic mask generator, and the box around one: ports
// `batched_mask_to_box` and `box_xyxy_to_xywh` of segment_anything/utils/amg.py
// (PyPI segment-anything 1.0) for a single mask.

/// One binary mask, row-major `height x width`, one byte per pixel (0 or 1).
///
/// The AMG thresholds logits into these (`masks > mask_threshold`), pads them back into the
/// image, run-length encodes them and cleans small regions; every function of this folder
/// treats any nonzero byte as set.
public struct BinaryMask: Sendable, Equatable {
    public let height: Int
    public let width: Int
    /// `[height, width]`, row-major.
    public var pixels: [UInt8]

    public init(height: Int, width: Int, pixels: [UInt8]) {
        precondition(height >= 0 && width >= 0, "mask size \(height)x\(width)")
        precondition(pixels.count == height * width, "mask \(height)x\(width) with \(pixels.count) pixels")
        self.height = height
        self.width = width
        self.pixels = pixels
    }

    /// An empty (all zero) mask.
    public init(height: Int, width: Int) {
        self.init(height: height, width: width, pixels: [UInt8](repeating: 0, count: height * width))
    }

    /// The mask `logits > threshold`, as the AMG binarizes with `mask_threshold`.
    ///
    /// `logits` is `[height, width]`; the threshold is converted to float32 first because torch
    /// compares a float32 tensor with a Python scalar in float32.
    public init(logits: UnsafeBufferPointer<Float>, height: Int, width: Int, threshold: Double = 0) {
        precondition(logits.count == height * width, "logits \(height)x\(width) with \(logits.count) values")
        let cut = Float(threshold)
        self.init(height: height, width: width, pixels: logits.map { $0 > cut ? 1 : 0 })
    }

    /// The number of set pixels (the AMG's `area`).
    public var area: Int {
        var count = 0
        for pixel in pixels where pixel != 0 { count += 1 }
        return count
    }

    /// The official box `[x0, y0, x1, y1]` (`batched_mask_to_box`): first and *last* set column
    /// and row, so x1 and y1 are inclusive and a one-pixel mask has `x1 == x0`; `[0, 0, 0, 0]`
    /// for an empty mask (the reference zeroes boxes whose right edge is left of the left one).
    public var box: [Int] {
        var x0 = width, y0 = height, x1 = -1, y1 = -1
        for y in 0..<height {
            let row = y * width
            var first = -1, last = -1
            for x in 0..<width where pixels[row + x] != 0 {
                if first < 0 { first = x }
                last = x
            }
            guard first >= 0 else { continue }
            if y0 == height { y0 = y }
            y1 = y
            x0 = min(x0, first)
            x1 = max(x1, last)
        }
        return y1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1, y1]
    }

    /// `box_xyxy_to_xywh(box)`: `[x0, y0, x1 - x0, y1 - y0]`, the record's `bbox`; a one-pixel
    /// mask has width and height 0 because the box's far edges are inclusive.
    public var bboxXYWH: [Int] { boxXYXYToXYWH(box) }
}

/// `box_xyxy_to_xywh`: `[x0, y0, x1, y1]` -> `[x0, y0, x1 - x0, y1 - y0]`. The AMG records both
/// `bbox` and `crop_box` this way.
public func boxXYXYToXYWH(_ box: [Int]) -> [Int] {
    precondition(box.count == 4, "box with \(box.count) values, expected 4")
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]]
}

/// The pixels set in any of `masks` (each `height x width`), one byte each (1: set).
public func coveredPixels(_ masks: [BinaryMask], height: Int, width: Int) -> [UInt8] {
    var covered = [UInt8](repeating: 0, count: height * width)
    for mask in masks {
        precondition(mask.height == height && mask.width == width, "a \(mask.width)x\(mask.height) mask on a \(width)x\(height) image")
        for (p, value) in mask.pixels.enumerated() where value != 0 { covered[p] = 1 }
    }
    return covered
}

/// The row-major index of the pixel a point (image pixels) falls in, clamped to the image.
public func pixelIndex(of point: SIMD2<Double>, height: Int, width: Int) -> Int {
    min(Int(point.y), height - 1) * width + min(Int(point.x), width - 1)
}
