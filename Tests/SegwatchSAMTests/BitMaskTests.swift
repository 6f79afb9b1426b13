@testable import SegwatchSAM
import SegwatchTensor
import SegwatchTestSupport
import Testing

// Masks that come from a device as bits (`Backend.maskBits`) must give the RLE and box that
// the byte masks give (maskToRLE and BinaryMask.box, checked against the reference elsewhere).
@Suite struct BitMaskTests {
    @Test("RLE, box and byte mask read off bits equal those of the byte mask", arguments: [1, 2, 3])
    func bitsGiveTheByteMasksRLEAndBox(seed: UInt64) {
        var random = SplitMix(seed: seed)
        var cases: [(height: Int, width: Int, values: [Float])] = []
        for (height, width) in [(1, 1), (1, 37), (33, 1), (7, 9), (40, 64), (17, 95)] {
            let n = height * width
            // Noise, a filled rectangle, empty, full, and the first and last pixels alone.
            cases.append((height, width, (0..<n).map { _ in random.next() % 3 == 0 ? 1 : -1 }))
            let (y0, y1) = (Int(random.next() % UInt64(height)), Int(random.next() % UInt64(height)))
            let (x0, x1) = (Int(random.next() % UInt64(width)), Int(random.next() % UInt64(width)))
            cases.append((height, width, (0..<n).map { i in
                (min(y0, y1)...max(y0, y1)).contains(i / width) && (min(x0, x1)...max(x0, x1)).contains(i % width) ? 2 : -2
            }))
            cases.append((height, width, [Float](repeating: -1, count: n)))
            cases.append((height, width, [Float](repeating: 1, count: n)))
            cases.append((height, width, (0..<n).map { $0 == 0 || $0 == n - 1 ? 1 : -1 }))
        }
        for (height, width, values) in cases {
            let bits = maskBits(Tensor(shape: [1, height, width], values: values), threshold: 0, counting: [])
            let mask = values.withUnsafeBufferPointer { BinaryMask(logits: $0, height: height, width: width) }
            let (rle, box) = rleAndBox(bits, plane: 0)
            #expect(rle == maskToRLE(mask), "\(height)x\(width)")
            #expect(box == mask.box, "\(height)x\(width)")
            #expect(BinaryMask(bits, plane: 0) == mask, "\(height)x\(width)")
            // The stability score from the counts is the one from the logits.
            let scaled = values.enumerated().map { $1 * Float($0 % 5) * 0.5 }  // values at and around the thresholds
            let counted = maskBits(Tensor(shape: [1, height, width], values: scaled), threshold: 0, counting: stabilityThresholds(offset: 1))
            let expected = calculateStabilityScore(logits: scaled, height: height, width: width, maskThreshold: 0, thresholdOffset: 1)
            let actual = stabilityScore(counted, plane: 0)
            #expect(actual == expected || (actual.isNaN && expected.isNaN), "\(height)x\(width)")
        }
    }
}
