// A mask that arrives as bits (`Backend.maskBits`, made on a device): its RLE, area and box
// read straight off the bits, without a byte per pixel.
import SegwatchTensor

/// The COCO RLE (`mask_to_rle_pytorch`) and the official box (`batched_mask_to_box`) of plane
/// `plane` of `bits`, whose column-major bit order is the RLE's own.
public func rleAndBox(_ bits: MaskBits, plane: Int) -> (rle: RLE, box: [Int]) {
    let (height, width) = (bits.height, bits.width), total = height * width
    guard total > 0 else { return (RLE(height: height, width: width, counts: []), [0, 0, 0, 0]) }
    let words = bits.words(of: plane)
    var counts: [Int] = []
    var current = false  // the reference starts with a 0-run; it is 0 long if pixel 0 is set
    var run = 0, i = 0
    var x0 = width, y0 = height, x1 = -1, y1 = -1
    func ones(from start: Int, to end: Int) {  // the box of pixels start..<end, all set
        let (first, last) = (start / height, (end - 1) / height)
        x0 = min(x0, first)
        x1 = max(x1, last)
        if first == last {
            y0 = min(y0, start % height)
            y1 = max(y1, (end - 1) % height)
        } else {  // down to the bottom of one column, from the top of the next
            (y0, y1) = (0, height - 1)
        }
    }
    while i < total {
        let offset = i % 32, left = min(32 - offset, total - i)
        let word = words[words.startIndex + i / 32] >> UInt32(offset)
        let same = min(current ? (~word).trailingZeroBitCount : word.trailingZeroBitCount, left)
        run += same
        i += same
        if same < left {
            if current { ones(from: i - run, to: i) }
            counts.append(run)
            current.toggle()
            run = 0
        }
    }
    if current { ones(from: i - run, to: i) }
    counts.append(run)
    return (RLE(height: height, width: width, counts: counts), y1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1, y1])
}

/// The thresholds `Backend.maskBits` counts for the stability score: the mask threshold 0 plus
/// and minus `offset`, each summed in double and compared in float32, as torch compares.
public func stabilityThresholds(offset: Double) -> [Float] {
    [Float(0 + offset), Float(0 - offset)]
}

/// `calculate_stability_score` of plane `plane` from the counts at `stabilityThresholds`:
/// totals in int32 and a float32 division, as the reference's (whose per-row int16 sums only
/// differ past 32767 set pixels in one row).
public func stabilityScore(_ bits: MaskBits, plane: Int) -> Float {
    Float(Int32(truncatingIfNeeded: bits.counts[2 * plane])) / Float(Int32(truncatingIfNeeded: bits.counts[2 * plane + 1]))
}

extension BinaryMask {
    /// Plane `plane` of `bits` as a byte mask.
    public init(_ bits: MaskBits, plane: Int) {
        let (height, width) = (bits.height, bits.width)
        var pixels = [UInt8](repeating: 0, count: height * width)
        let words = bits.words(of: plane)
        for (w, word) in zip(0..., words) where word != 0 {
            var rest = word
            while rest != 0 {
                let i = w * 32 + rest.trailingZeroBitCount
                pixels[(i % height) * width + i / height] = 1
                rest &= rest - 1
            }
        }
        self.init(height: height, width: width, pixels: pixels)
    }
}
