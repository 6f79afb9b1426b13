import SegwatchSAM
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// A keyframe's grid decoded in slices: on one picture, once every slice is decoded, the masks
/// are the whole generator's, field for field.
struct GridSlicesTests {
    private func generator(_ f: SamFixture, pointsPerSide: Int, pointsPerBatch: Int,
                           minMaskRegionArea: Int = 0) throws -> SamAutomaticMaskGenerator<CPUBackend> {
        var options = MaskGeneratorOptions()
        // Random weights keep few masks at the official thresholds: keep every mask, so that
        // the NMS across slices has work to do.
        options.predIouThresh = 0
        options.stabilityScoreThresh = 0
        options.pointsPerSide = pointsPerSide
        options.pointsPerBatch = pointsPerBatch
        options.minMaskRegionArea = minMaskRegionArea
        return try SamAutomaticMaskGenerator(predictor: f.predictor, options: options)
    }

    private func expectSame(_ sliced: [GeneratedMask], _ whole: [GeneratedMask]) {
        #expect(sliced.count == whole.count)
        for (a, b) in zip(sliced, whole) {
            #expect(a.rle == b.rle && a.area == b.area && a.box == b.box && a.cropBox == b.cropBox)
            #expect(a.predictedIou == b.predictedIou && a.stabilityScore == b.stabilityScore && a.pointCoords == b.pointCoords)
        }
    }

    /// Batches split unevenly (5 into 3 slices), more slices asked than batches, one slice, and
    /// the small-region clean-up, on two fixtures and pictures of two shapes.
    @Test(arguments: [("mobile_sam", "bikes_f100.image_u8", 5, 7, 3, 0), ("mobile_sam", "bikes_f100.image_u8", 4, 16, 9, 0),
                      ("sam_vit", "bus.image_u8", 3, 9, 1, 0), ("sam_vit", "bus.image_u8", 4, 4, 2, 200)])
    func slicesOfOnePictureGiveTheWholeGeneratorsMasks(fixture: String, image: String, side: Int, batch: Int, slices: Int,
                                                        minArea: Int) throws {
        let f = try SamFixture(fixture)
        let picture = try f.image(image)
        let generator = try generator(f, pointsPerSide: side, pointsPerBatch: batch, minMaskRegionArea: minArea)
        let features = try f.predictor.setImage(picture)
        let whole = try generator.generate(picture, features: features)
        #expect(!whole.isEmpty)

        var grid = try GridSlices(generator: generator, slices: slices)
        let batches = (side * side + batch - 1) / batch
        #expect(grid.count == min(slices, batches))
        var timings = GeneratorTimings()
        while !grid.isComplete {
            let slice = try grid.decodeNext(features: features, timings: &timings)
            #expect(slice.allSatisfy { $0.cropBox == [0, 0, picture.width, picture.height] })
        }
        #expect(grid.decoded == grid.count && timings.decoder > .zero && timings.masks > .zero)
        expectSame(grid.masks(), whole)
    }

    /// Points in explained pixels (the left half of the picture) are not decoded.
    @Test func explainedPointsAreLeftOut() throws {
        let f = try SamFixture("mobile_sam")
        let picture = try f.image("bikes_f100.image_u8")
        let (height, width) = (picture.height, picture.width)
        let generator = try generator(f, pointsPerSide: 4, pointsPerBatch: 4)
        let features = try f.predictor.setImage(picture)
        var explained = [UInt8](repeating: 0, count: height * width)
        for y in 0..<height { for x in 0..<width / 2 { explained[y * width + x] = 1 } }
        var grid = try GridSlices(generator: generator, slices: 2)
        var timings = GeneratorTimings()
        // Each slice has 8 of the 4x4 grid's points (two rows), 4 of them in the left half.
        for _ in 0..<2 {
            let before = timings.prompts
            let masks = try grid.decodeNext(features: features, explained: explained, timings: &timings)
            #expect(timings.prompts - before == 4)
            #expect(masks.allSatisfy { Int($0.pointCoords.x) >= width / 2 })
        }
    }

    @Test func gridsWithCropLayersAreNotSliced() throws {
        let f = try SamFixture("mobile_sam")
        var options = MaskGeneratorOptions()
        options.cropNLayers = 1
        let generator = try SamAutomaticMaskGenerator(predictor: f.predictor, options: options)
        #expect(throws: SamError.self) { try GridSlices(generator: generator, slices: 4) }
        #expect(throws: SamError.self) { try GridSlices(generator: try self.generator(f, pointsPerSide: 2, pointsPerBatch: 4), slices: 0) }
    }
}
