// How much of each CLIP patch a mask covers: the weights of the training-free segment embedding.
import SegwatchSAM

/// The fraction of each patch's area that `mask` covers, `[grid.h * grid.w]` row-major in
/// [0, 1], exactly: pixels and patches are rectangles of the frame, and a patch of a
/// `grid.h x grid.w` grid laid over an `H x W` frame (the frame resized whole to the grid times
/// the patch size) is `[i H / grid.h, (i + 1) H / grid.h) x [j W / grid.w, (j + 1) W / grid.w)`.
/// A pixel on a patch border counts in both, by the part inside each.
///
/// Works on the mask's runs (column-major, as COCO stores them): the cost is the runs plus the
/// frame's columns times the grid's rows, not the pixels.
public func patchCoverage(_ mask: RLE, grid: (h: Int, w: Int)) -> [Float] {
    let (height, width) = (mask.height, mask.width)
    precondition(grid.h > 0 && grid.w > 0, "grid \(grid)")
    guard height > 0, width > 0 else { return [Float](repeating: 0, count: grid.h * grid.w) }
    let patchHeight = Double(height) / Double(grid.h), patchWidth = Double(width) / Double(grid.w)
    // columnCover[x * grid.h + i]: how much of column x's unit strip inside patch row i is set.
    var columnCover = [Double](repeating: 0, count: width * grid.h)
    var position = 0, set = false
    for count in mask.counts {
        if set {
            // A run of set pixels may wrap from the bottom of one column to the top of the next.
            var start = position, remaining = count
            while remaining > 0 {
                let x = start / height, y0 = start % height, y1 = min(height, y0 + remaining)
                addOverlaps(Double(y0), Double(y1), cell: patchHeight, cells: grid.h) { i, overlap in
                    columnCover[x * grid.h + i] += overlap
                }
                remaining -= y1 - y0
                start += y1 - y0
            }
        }
        position += count
        set.toggle()
    }
    var coverage = [Double](repeating: 0, count: grid.h * grid.w)
    for x in 0..<width {
        addOverlaps(Double(x), Double(x + 1), cell: patchWidth, cells: grid.w) { j, overlap in
            for i in 0..<grid.h where columnCover[x * grid.h + i] != 0 {
                coverage[i * grid.w + j] += overlap * columnCover[x * grid.h + i]
            }
        }
    }
    let area = patchHeight * patchWidth
    return coverage.map { Float(min(1, $0 / area)) }
}

/// Calls `body(cell, length)` for every cell of size `cell` (cells `0..<cells` from 0) that
/// `[start, end)` overlaps, with the overlap's length.
@inline(__always)
private func addOverlaps(_ start: Double, _ end: Double, cell: Double, cells: Int, _ body: (Int, Double) -> Void) {
    var index = min(cells - 1, Int(start / cell))
    while index < cells {
        let low = Double(index) * cell, high = index == cells - 1 ? Double.infinity : Double(index + 1) * cell
        if low >= end { break }
        let overlap = min(end, high) - max(start, low)
        if overlap > 0 { body(index, overlap) }
        index += 1
    }
}
