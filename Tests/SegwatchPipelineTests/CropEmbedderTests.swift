import Foundation
import SegwatchCLIP
@testable import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor
import SegwatchTestSupport
import Testing

struct CropEmbedderTests {
    /// A 4x6 picture whose pixel (x, y) is (10 y + x, 100, 200), an L-shaped mask over x 1...3,
    /// y 1...2: the box is 3 wide and 2 tall, so the square is 3x3 with one fill row on top
    /// ((3 - 2) / 2 = 0 rows above, so none above and one below) and the unmasked corner filled.
    @Test func squareCropKeepsMaskPixelsAndFillsTheRest() throws {
        let (h, w) = (4, 6)
        var pixels = [UInt8]()
        for y in 0..<h { for x in 0..<w { pixels += [UInt8(10 * y + x), 100, 200] } }
        var mask = BinaryMask(height: h, width: w)
        for (x, y) in [(1, 1), (2, 1), (3, 1), (1, 2)] { mask.pixels[y * w + x] = 1 }
        let fill: [Float] = [0.5, 0.25, 1]
        let crop = try #require(maskedSquareCrop(RGBImage(height: h, width: w, pixels: pixels), mask: mask, fill: fill))
        let f: [UInt8] = [128, 64, 255]
        let expected: [[UInt8]] = [
            [11, 100, 200], [12, 100, 200], [13, 100, 200],
            [21, 100, 200], f, f,
            f, f, f,
        ]
        #expect(crop.height == 3 && crop.width == 3)
        #expect(crop.pixels == expected.flatMap { $0 })
    }

    @Test func tallMaskIsCenteredHorizontally() throws {
        var mask = BinaryMask(height: 5, width: 5)
        for y in 0..<4 { mask.pixels[y * 5 + 2] = 1 }
        let picture = RGBImage(height: 5, width: 5, pixels: [UInt8](repeating: 7, count: 75))
        let crop = try #require(maskedSquareCrop(picture, mask: mask, fill: [0, 0, 0]))
        #expect(crop.height == 4 && crop.width == 4)
        // (4 - 1) / 2 = 1 column of fill on the left.
        for y in 0..<4 { #expect(Array(crop.pixels[(y * 4 + 1) * 3..<(y * 4 + 2) * 3]) == [7, 7, 7]) }
        #expect(crop.pixels.filter { $0 == 7 }.count == 12)
    }

    @Test func emptyMaskHasNoCrop() {
        #expect(maskedSquareCrop(RGBImage(height: 2, width: 2, pixels: [UInt8](repeating: 1, count: 12)),
                                 mask: BinaryMask(height: 2, width: 2), fill: [0, 0, 0]) == nil)
    }

    /// The image tower run on a batch of crops gives what it gives each crop alone.
    @Test func batchesAgreeWithOneAtATime() throws {
        let backend = testBackend
        let clip = try CLIP.load(Fixtures.root.appendingPathComponent("clip_hf").path, backend: backend)
        let (h, w) = (40, 56)
        var state: UInt32 = 12345
        let pixels = (0..<(h * w * 3)).map { _ -> UInt8 in state = state &* 1_103_515_245 &+ 12345; return UInt8(state >> 24) }
        let picture = RGBImage(height: h, width: w, pixels: pixels)
        func box(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int) -> RLE {
            var mask = BinaryMask(height: h, width: w)
            for y in y0..<y1 { for x in x0..<x1 { mask.pixels[y * w + x] = 1 } }
            return maskToRLE(mask)
        }
        let masks = [box(0, 0, 10, 30), box(20, 5, 56, 12), maskToRLE(BinaryMask(height: h, width: w)), box(3, 3, 4, 4), box(0, 0, 56, 40)]
        let one = try CropEmbedder(clip: clip, backend: backend, batchSize: 1).embed(picture, masks: masks)
        let batched = try CropEmbedder(clip: clip, backend: backend, batchSize: 3).embed(picture, masks: masks)
        #expect(one[2] == nil && batched[2] == nil)
        for n in [0, 1, 3, 4] {
            let a = try #require(one[n]), b = try #require(batched[n])
            expectClose(a, b, atol: 1e-5, "mask \(n)")
            #expect(abs(a.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        }
        #expect(one[0] != one[1])
    }

    @Test func maskOfAnotherSizeIsRefused() throws {
        let backend = testBackend
        let clip = try CLIP.load(Fixtures.root.appendingPathComponent("clip_hf").path, backend: backend)
        let picture = RGBImage(height: 4, width: 4, pixels: [UInt8](repeating: 0, count: 48))
        #expect(throws: PipelineError.self) {
            try CropEmbedder(clip: clip, backend: backend).embed(picture, masks: [maskToRLE(BinaryMask(height: 5, width: 4))])
        }
    }
}
