// COCO run-length encoding of AMG masks: ports `mask_to_rle_pytorch`, `rle_to_mask`,
// `area_from_rle` and `uncrop_masks` of segment_anything/utils/amg.py (PyPI
// segment-anything 1.0), and the compressed string of pycocotools 2.0.11
// (common/maskApi.c: `rleToString`, `rleFrString`) that `coco_encode_rle` produces.

/// An uncompressed COCO RLE: run lengths over the mask in column-major (Fortran) order,
/// alternating zeros and ones and starting with a run of zeros, which is 0 long when the
/// first pixel (top-left) is set.
public struct RLE: Sendable, Equatable {
    public let height: Int
    public let width: Int
    public var counts: [Int]

    public init(height: Int, width: Int, counts: [Int]) {
        self.height = height
        self.width = width
        self.counts = counts
    }
}

/// `mask_to_rle_pytorch` for one mask: the runs of the column-major flattening.
///
/// Every run after the first is at least 1 long. A mask with no pixels (a zero side) has no
/// counts; the reference fails on it (`tensor[i, 0]` out of range).
public func maskToRLE(_ mask: BinaryMask) -> RLE {
    let height = mask.height, width = mask.width
    guard height > 0, width > 0 else { return RLE(height: height, width: width, counts: []) }
    var counts: [Int] = []
    var current = false  // the reference starts with a 0-run; it is 0 long if pixel 0 is set
    var run = 0
    mask.pixels.withUnsafeBufferPointer { pixels in
        for x in 0..<width {
            for y in 0..<height {
                let value = pixels[y * width + x] != 0
                if value != current {
                    counts.append(run)
                    current = value
                    run = 0
                }
                run += 1
            }
        }
    }
    counts.append(run)
    return RLE(height: height, width: width, counts: counts)
}

/// `rle_to_mask`: the mask of an uncompressed RLE.
///
/// The counts must sum to `height * width` (the reference's numpy slicing silently drops or
/// leaves garbage otherwise); that is checked.
public func rleToMask(_ rle: RLE) -> BinaryMask {
    let height = rle.height, width = rle.width
    var pixels = [UInt8](repeating: 0, count: height * width)
    var index = 0
    var value = false
    for count in rle.counts {
        precondition(count >= 0 && index + count <= height * width,
                     "RLE counts overrun a \(height)x\(width) mask")
        if value {
            // `index` walks the column-major order; write into row-major storage.
            for i in index..<(index + count) { pixels[(i % height) * width + i / height] = 1 }
        }
        index += count
        value.toggle()
    }
    precondition(index == height * width, "RLE counts sum to \(index), expected \(height * width)")
    return BinaryMask(height: height, width: width, pixels: pixels)
}

/// `area_from_rle`: the sum of the odd (set) runs.
public func areaFromRLE(_ rle: RLE) -> Int {
    var area = 0
    for i in stride(from: 1, to: rle.counts.count, by: 2) { area += rle.counts[i] }
    return area
}

/// pycocotools `rleToString`: the compressed `counts` string of a COCO RLE.
///
/// Each count from the third on (index > 2, not >= 2, as in maskApi.c) is replaced by its
/// difference with the count two before it; each value is then written as little-endian 5-bit
/// groups, bit 0x20 meaning "more groups follow" and bit 0x10 of the last group being the sign,
/// each group offset by 48 into printable ASCII.
public func rleToString(_ rle: RLE) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(rle.counts.count * 2)
    for i in rle.counts.indices {
        var x = rle.counts[i]
        if i > 2 { x -= rle.counts[i - 2] }
        var more = true
        while more {
            var c = x & 0x1f
            x >>= 5  // arithmetic shift, as `long` in C
            more = (c & 0x10) != 0 ? x != -1 : x != 0
            if more { c |= 0x20 }
            bytes.append(UInt8(c + 48))
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// pycocotools `rleFrString`: the uncompressed RLE of a compressed `counts` string.
///
/// Returns nil where pycocotools would read garbage: a character outside `0`...`o`, a string
/// ending inside a group, a group sequence too long for a count, a negative count, or counts
/// that do not sum to `height * width`.
public func rleFromString(_ string: String, height: Int, width: Int) -> RLE? {
    var counts: [Int] = []
    var x = 0, shift = 0, total = 0
    for byte in string.utf8 {
        guard byte >= 48, byte < 48 + 64, shift <= 55 else { return nil }
        let c = Int(byte) - 48
        x |= (c & 0x1f) << shift
        shift += 5
        if c & 0x20 != 0 { continue }
        if c & 0x10 != 0 { x |= -1 << shift }  // sign-extend the last group
        let m = counts.count
        if m > 2 { x += counts[m - 2] }
        guard x >= 0, x <= height * width - total else { return nil }
        total += x
        counts.append(x)
        x = 0
        shift = 0
    }
    guard shift == 0, total == height * width else { return nil }
    return RLE(height: height, width: width, counts: counts)
}

/// `uncrop_masks` for one mask: places a crop-size mask at the crop's offset in an
/// `origHeight x origWidth` image, zeros elsewhere (`F.pad` with `(x0, pad_x - x0, y0, pad_y -
/// y0)`).
///
/// `cropBox` is XYXY and the mask is its size. Parts of the crop outside the image are dropped,
/// as negative padding crops in `F.pad`; the AMG's crop boxes always lie inside the image.
public func uncropMask(_ mask: BinaryMask, cropBox: [Int], origHeight: Int, origWidth: Int) -> BinaryMask {
    precondition(cropBox.count == 4, "crop box with \(cropBox.count) values, expected 4")
    let x0 = cropBox[0], y0 = cropBox[1]
    precondition(mask.width == cropBox[2] - x0 && mask.height == cropBox[3] - y0,
                 "mask \(mask.height)x\(mask.width) for crop box \(cropBox)")
    if x0 == 0, y0 == 0, cropBox[2] == origWidth, cropBox[3] == origHeight { return mask }
    var out = BinaryMask(height: origHeight, width: origWidth)
    let xStart = max(x0, 0), xEnd = min(x0 + mask.width, origWidth)
    guard xStart < xEnd else { return out }
    for y in max(y0, 0)..<max(max(y0, 0), min(y0 + mask.height, origHeight)) {
        let source = (y - y0) * mask.width - x0
        let target = y * origWidth
        for x in xStart..<xEnd { out.pixels[target + x] = mask.pixels[source + x] }
    }
    return out
}
