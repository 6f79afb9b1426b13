import SegwatchPipeline
import Testing

/// Every expected value here is worked out by hand in the comments.
struct SegmentationMetricsTests {
    func close(_ a: Double?, _ b: Double) -> Bool { a.map { abs($0 - b) < 1e-12 } ?? false }

    /// Truth `0 0 1 / 1 2 255`, prediction `0 1 1 / 1 unknown 0`. The ignored pixel drops out;
    /// the pairs left are (0,0) (0,1) (1,1) (1,1) (2,unknown).
    /// truth areas 2 2 1, predicted 1 3 0, intersections 1 2 0;
    /// IoU 1/2, 2/3, 0/1; accuracy 1/2, 1, 0; aAcc 3/5; fwIoU 2/5 * 1/2 + 2/5 * 2/3 + 0.
    @Test func oneImageByHand() throws {
        var m = ConfusionMatrix(classes: 3)
        try m.add(truth: [0, 0, 1, 1, 2, 255], prediction: [0, 1, 1, 1, 255, 0], unknown: 255)
        let s = m.scores
        #expect(s.truthArea == [2, 2, 1] && s.predictedArea == [1, 3, 0] && s.intersection == [1, 2, 0])
        #expect(close(s.iou[0], 0.5) && close(s.iou[1], 2.0 / 3) && close(s.iou[2], 0))
        #expect(close(s.meanIoU, (0.5 + 2.0 / 3) / 3))
        #expect(close(s.meanAccuracy, 0.5) && close(s.pixelAccuracy, 0.6))
        #expect(close(s.frequencyWeightedIoU, 0.2 + 0.4 * 2 / 3))
        #expect(m.count(truth: 2, predicted: nil) == 1)
    }

    /// Truth `0 0 0 0`, prediction `0 0 3 3`, 4 classes. Class 3 is only predicted: IoU 0/2,
    /// counted; classes 1 and 2 are in neither: left out. mIoU (1/2 + 0) / 2; mAcc 1/2 (class 0
    /// only); fwIoU 1 * 1/2.
    @Test func classInNeitherIsLeftOutOfTheMeans() throws {
        var m = ConfusionMatrix(classes: 4)
        try m.add(truth: [0, 0, 0, 0], prediction: [0, 0, 3, 3], unknown: 255)
        let s = m.scores
        #expect(s.iou[1] == nil && s.iou[2] == nil && close(s.iou[3], 0) && close(s.iou[0], 0.5))
        #expect(s.accuracy[3] == nil)
        #expect(close(s.meanIoU, 0.25) && close(s.meanAccuracy, 0.5) && close(s.pixelAccuracy, 0.5))
        #expect(close(s.frequencyWeightedIoU, 0.5))
    }

    /// Scores come from the matrix summed over images, not from a mean of per-image scores:
    /// adding truth `2 2`, prediction `2 2` to the first case makes class 2's IoU 2/3
    /// (truth 3, predicted 2, intersection 2).
    @Test func imagesAccumulateIntoOneMatrix() throws {
        var m = ConfusionMatrix(classes: 3)
        try m.add(truth: [0, 0, 1, 1, 2, 255], prediction: [0, 1, 1, 1, 255, 0], unknown: 255)
        var second = ConfusionMatrix(classes: 3)
        try second.add(truth: [2, 2], prediction: [2, 2], unknown: 255)
        m.add(second)
        #expect(close(m.scores.iou[2], 2.0 / 3))
        #expect(close(m.scores.meanIoU, (0.5 + 2.0 / 3 + 2.0 / 3) / 3))
        #expect(close(m.scores.pixelAccuracy, 5.0 / 7))
    }

    @Test func sixteenBitMapsUseTheirOwnUnknown() throws {
        var m = ConfusionMatrix(classes: 300, ignoreIndex: 65535)
        try m.add(truth: [299, 299, 65535], prediction: [299, 65535, 4], unknown: 65535)
        #expect(close(m.scores.iou[299], 0.5) && m.scores.iou[4] == nil)
    }

    @Test func nothingButIgnoredPixelsHasNoScores() throws {
        var m = ConfusionMatrix(classes: 2)
        try m.add(truth: [255, 255], prediction: [0, 1], unknown: 255)
        #expect(m.scores.meanIoU == nil && m.scores.pixelAccuracy == nil && m.scores.frequencyWeightedIoU == nil)
    }

    @Test func valuesOutsideTheClassesAreErrors() {
        var m = ConfusionMatrix(classes: 3)
        #expect(throws: MetricError.value(7, inTruth: true, classes: 3, allowed: 255)) {
            try m.add(truth: [7], prediction: [0], unknown: 255)
        }
        #expect(throws: MetricError.value(9, inTruth: false, classes: 3, allowed: 255)) {
            try m.add(truth: [0], prediction: [9], unknown: 255)
        }
        #expect(throws: MetricError.sizes(truth: 2, prediction: 1)) {
            try m.add(truth: [0, 1], prediction: [0], unknown: 255)
        }
    }
}
