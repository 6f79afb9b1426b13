// A scene cut is where the picture's brightness distribution jumps: cheap to see on a
// subsampled luma histogram, and blind to motion within a scene, which moves pixels around
// without changing how many are dark or bright.
import SegwatchSAM

/// The normalized histogram of a picture's luma (BT.601) in `bins` bins, on every `step`th
/// pixel of every `step`th row.
public func lumaHistogram(_ picture: RGBImage, bins: Int = 32, step: Int = 4) -> [Float] {
    var histogram = [Float](repeating: 0, count: bins)
    var count = 0
    picture.pixels.withUnsafeBufferPointer { pixels in
        for y in stride(from: 0, to: picture.height, by: step) {
            for x in stride(from: 0, to: picture.width, by: step) {
                let p = 3 * (y * picture.width + x)
                let luma = (299 * Int(pixels[p]) + 587 * Int(pixels[p + 1]) + 114 * Int(pixels[p + 2])) / 1000
                histogram[luma * bins / 256] += 1
                count += 1
            }
        }
    }
    return count > 0 ? histogram.map { $0 / Float(count) } : histogram
}

/// Half the L1 distance of two normalized histograms: 0 for equal ones, 1 for disjoint ones.
public func histogramDistance(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "histograms of \(a.count) and \(b.count) bins")
    return Double(zip(a, b).reduce(0) { $0 + abs($1.0 - $1.1) }) / 2
}
