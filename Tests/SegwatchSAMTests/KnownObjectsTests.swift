import SegwatchSAM
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// The generator helped by known objects: grid points inside a known mask are not decoded, the
/// known masks pass the same filters and meet the grid's in the same NMS.
struct KnownObjectsTests {
    private func generator(_ f: SamFixture, predIou: Double = 0) throws -> SamAutomaticMaskGenerator<CPUBackend> {
        var options = MaskGeneratorOptions()
        options.predIouThresh = predIou
        options.stabilityScoreThresh = 0
        options.pointsPerSide = 6
        options.pointsPerBatch = 16
        return try SamAutomaticMaskGenerator(predictor: f.predictor, options: options)
    }

    @Test func noKnownObjectsIsTheWholeGenerator() throws {
        let f = try SamFixture("sam_vit")
        let picture = try f.image("bus.image_u8")
        let generator = try generator(f)
        let features = try f.predictor.setImage(picture)
        let whole = try generator.generate(picture, features: features)
        var timings = GeneratorTimings()
        let helped = try generator.generate(features: features, known: [], binaries: [], timings: &timings)
        #expect(helped.decodedPoints == 36 && timings.prompts == 36 && helped.known.allSatisfy { $0 == nil })
        #expect(helped.masks.count == whole.count)
        for (a, b) in zip(helped.masks, whole) { #expect(a.rle == b.rle && a.box == b.box && a.predictedIou == b.predictedIou) }
    }

    /// Known objects: a rectangle in the picture's top left that passes the filters, and one
    /// that fails the predicted-IoU filter.
    @Test func pointsInsideKnownMasksAreNotDecoded() throws {
        let f = try SamFixture("mobile_sam")
        let picture = try f.image("bikes_f100.image_u8")
        let (height, width) = (picture.height, picture.width)
        let generator = try generator(f, predIou: 0.3)
        let features = try f.predictor.setImage(picture)
        func rectangle(_ x1: Int, _ y1: Int, iou: Float) -> (GeneratedMask, BinaryMask) {
            var mask = BinaryMask(height: height, width: width)
            for y in 0..<y1 { for x in 0..<x1 { mask.pixels[y * width + x] = 1 } }
            let rle = maskToRLE(mask)
            return (GeneratedMask(rle: rle, area: x1 * y1, box: [0, 0, x1 - 1, y1 - 1], predictedIou: iou, pointCoords: SIMD2(1, 1),
                                  stabilityScore: 1, cropBox: [0, 0, width, height]), mask)
        }
        let known = [rectangle(width / 2, height / 2, iou: 0.99), rectangle(width / 4, height, iou: 0.1)]
        var timings = GeneratorTimings()
        let helped = try generator.generate(features: features, known: known.map(\.0), binaries: known.map(\.1), timings: &timings)
        // The 6x6 grid's points at (i + 0.5) / 6 of each side: columns and rows 0...2 lie in the
        // top-left half. The tall rectangle fails the filter: the points it covers are decoded.
        let uncovered = (0..<6).flatMap { row in (0..<6).map { (row, $0) } }.filter { row, column in !(column < 3 && row < 3) }
        #expect(helped.decodedPoints == uncovered.count && timings.prompts == uncovered.count)
        #expect(helped.known.contains(0) && !helped.known.contains(1))
        for (mask, k) in zip(helped.masks, helped.known) {
            if let k {
                #expect(mask.rle == known[k].0.rle)
            } else {
                let point = mask.pointCoords
                #expect(known[0].1.pixels[Int(point.y) * width + Int(point.x)] == 0)
                #expect(mask.predictedIou > 0.3)
            }
        }
    }
}
