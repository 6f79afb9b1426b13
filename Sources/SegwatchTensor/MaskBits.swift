/// Binary masks as bits, with counts of the values above some thresholds: what mask
/// post-processing needs of a plane of logits, a bit per pixel instead of a float
/// (`Backend.maskBits`). On a device only these cross to the host.
public struct MaskBits: Sendable, Equatable {
    public let planes: Int
    public let height: Int
    public let width: Int
    /// `[planes, wordsPerPlane]`: pixel `i` of a plane's column-major order (`x * height + y`,
    /// the order of SAM's run-length encoding) in bit `i % 32` of word `i / 32`, set where the
    /// value is above the threshold.
    public var words: [UInt32]
    /// `[planes, thresholds]`: the values above each of the counted thresholds.
    public var counts: [Int]

    public var wordsPerPlane: Int { (height * width + 31) / 32 }

    public init(planes: Int, height: Int, width: Int, words: [UInt32], counts: [Int]) {
        (self.planes, self.height, self.width, self.words, self.counts) = (planes, height, width, words, counts)
    }

    /// The words of `plane`.
    public func words(of plane: Int) -> ArraySlice<UInt32> {
        words[plane * wordsPerPlane ..< (plane + 1) * wordsPerPlane]
    }
}

/// `Backend.maskBits` on the CPU: `x` is `[..., height, width]`, every leading index a plane.
public func maskBits(_ x: Tensor, threshold: Float, counting thresholds: [Float]) -> MaskBits {
    precondition(x.rank >= 2 && thresholds.count <= maskBitsThresholds, "maskBits: \(x.shape), \(thresholds.count) thresholds")
    let x = x.contiguous()
    let (height, width) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
    let planes = x.shape.dropLast(2).reduce(1, *), perPlane = (height * width + 31) / 32
    var words = [UInt32](repeating: 0, count: planes * perPlane)
    var counts = [Int](repeating: 0, count: planes * thresholds.count)
    let source = x.pointer
    words.withUnsafeMutableBufferPointer { words in
        counts.withUnsafeMutableBufferPointer { counts in
            let (words, counts) = (words.baseAddress!, counts.baseAddress!)
            parallelFor(planes) { range in
                for plane in range {
                    let values = source + plane * height * width
                    for x in 0..<width {
                        for y in 0..<height where values[y * width + x] > threshold {
                            let i = x * height + y
                            words[plane * perPlane + i / 32] |= 1 << UInt32(i % 32)
                        }
                    }
                    for (t, cut) in thresholds.enumerated() {
                        var count = 0
                        for i in 0..<(height * width) where values[i] > cut { count += 1 }
                        counts[plane * thresholds.count + t] = count
                    }
                }
            }
        }
    }
    return MaskBits(planes: planes, height: height, width: width, words: words, counts: counts)
}

/// The thresholds `maskBits` counts at most.
public let maskBitsThresholds = 4
