import SegwatchSAM

/// A non-empty mask's extent (inclusive pixel bounds), area and centroid.
public struct MaskBox: Sendable, Equatable {
    public var x0: Int, y0: Int, x1: Int, y1: Int
    public var area: Int
    public var centroid: (x: Double, y: Double)

    /// Nil for an empty mask.
    public init?(_ mask: BinaryMask) {
        var x0 = mask.width, y0 = mask.height, x1 = -1, y1 = -1
        var area = 0, sumX = 0, sumY = 0
        mask.pixels.withUnsafeBufferPointer { pixels in
            for y in 0..<mask.height {
                let row = y * mask.width
                for x in 0..<mask.width where pixels[row + x] != 0 {
                    area += 1
                    sumX += x
                    sumY += y
                    x0 = min(x0, x); x1 = max(x1, x)
                    y0 = min(y0, y); y1 = max(y1, y)
                }
            }
        }
        guard area > 0 else { return nil }
        (self.x0, self.y0, self.x1, self.y1, self.area) = (x0, y0, x1, y1, area)
        centroid = (Double(sumX) / Double(area), Double(sumY) / Double(area))
    }

    public static func == (a: MaskBox, b: MaskBox) -> Bool {
        (a.x0, a.y0, a.x1, a.y1, a.area) == (b.x0, b.y0, b.x1, b.y1, b.area) && a.centroid == b.centroid
    }
}

/// The IoU of mask `a` moved by `shift` pixels (what leaves the frame is lost) with mask `b`,
/// both of one size; only the boxes' intersection is scanned.
public func maskIoU(_ a: BinaryMask, _ aBox: MaskBox, shiftedBy shift: (x: Int, y: Int), _ b: BinaryMask, _ bBox: MaskBox) -> Double {
    precondition(a.width == b.width && a.height == b.height, "maskIoU: \(a.width)x\(a.height) and \(b.width)x\(b.height)")
    // a's box after the shift, clipped to the frame.
    let ax0 = max(aBox.x0 + shift.x, 0), ax1 = min(aBox.x1 + shift.x, a.width - 1)
    let ay0 = max(aBox.y0 + shift.y, 0), ay1 = min(aBox.y1 + shift.y, a.height - 1)
    var shiftedArea = 0, intersection = 0
    a.pixels.withUnsafeBufferPointer { ap in
        b.pixels.withUnsafeBufferPointer { bp in
            guard ax0 <= ax1, ay0 <= ay1 else { return }
            // Where b's box covers the row, both masks are read; elsewhere a's alone.
            let bx0 = max(bBox.x0, ax0), bx1 = min(bBox.x1, ax1)
            for y in ay0...ay1 {
                let aRow = ap.baseAddress! + (y - shift.y) * a.width - shift.x, bRow = bp.baseAddress! + y * b.width
                guard y >= bBox.y0, y <= bBox.y1, bx0 <= bx1 else {
                    shiftedArea += setPixels(aRow + ax0, ax1 + 1 - ax0).a
                    continue
                }
                let both = setPixels(aRow + bx0, bx1 + 1 - bx0, and: bRow + bx0)
                shiftedArea += setPixels(aRow + ax0, bx0 - ax0).a + both.a + setPixels(aRow + bx1 + 1, ax1 - bx1).a
                intersection += both.both
            }
        }
    }
    let union = shiftedArea + bBox.area - intersection
    return union > 0 ? Double(intersection) / Double(union) : 0
}

/// The set bytes among `count` at `a`, and (with `b`) the places set in both: 16 bytes at a
/// time, as random-weight masks span the frame and the tracker compares every pair.
func setPixels(_ a: UnsafePointer<UInt8>, _ count: Int, and b: UnsafePointer<UInt8>? = nil) -> (a: Int, both: Int) {
    typealias Bytes = SIMD16<UInt8>
    let one = Bytes(repeating: 1)
    var (aTotal, bothTotal) = (0, 0)
    var i = 0
    while i + Bytes.scalarCount <= count {
        // Byte counters, emptied before they can wrap.
        var (aCount, bothCount) = (Bytes(), Bytes())
        let end = min(count, i + 255 * Bytes.scalarCount)
        while i + Bytes.scalarCount <= end {
            let aSet = pointwiseMin(UnsafeRawPointer(a + i).loadUnaligned(as: Bytes.self), one)
            aCount &+= aSet
            if let b { bothCount &+= aSet & pointwiseMin(UnsafeRawPointer(b + i).loadUnaligned(as: Bytes.self), one) }
            i += Bytes.scalarCount
        }
        aTotal += aCount.indices.reduce(0) { $0 + Int(aCount[$1]) }
        bothTotal += bothCount.indices.reduce(0) { $0 + Int(bothCount[$1]) }
    }
    for j in i..<max(i, count) where a[j] != 0 {
        aTotal += 1
        if let b, b[j] != 0 { bothTotal += 1 }
    }
    return (aTotal, bothTotal)
}
