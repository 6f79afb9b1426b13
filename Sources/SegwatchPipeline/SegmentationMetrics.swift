// Semantic segmentation scores with the semantics of mmsegmentation's `IoUMetric` and
// detectron2's `SemSegEvaluator`: one confusion matrix over every image, ground-truth pixels at
// the ignore index left out, a class that neither the ground truth nor the predictions hold left
// out of the means.

/// Counts of (ground truth, prediction) pixel pairs over any number of images.
///
/// A prediction may be "unknown" (`SemanticMap`'s unlabeled pixels): it is counted in its ground
/// truth class's area and matches nothing, so it lowers that class's IoU and the pixel accuracy.
public struct ConfusionMatrix: Sendable, Equatable {
    public let classes: Int
    public let ignoreIndex: Int
    /// `[classes, classes + 1]` row-major: row = ground truth, column = prediction, the last
    /// column unknown predictions.
    public private(set) var counts: [Int]

    public init(classes: Int, ignoreIndex: Int = 255) {
        precondition(classes > 0, "\(classes) classes")
        self.classes = classes
        self.ignoreIndex = ignoreIndex
        counts = [Int](repeating: 0, count: classes * (classes + 1))
    }

    public func count(truth: Int, predicted: Int?) -> Int {
        counts[truth * (classes + 1) + (predicted ?? classes)]
    }

    /// Adds one image. Ground-truth values: a class, or the ignore index. Predictions: a class,
    /// or `unknown` (any other value is an error: the maps and the class list disagree).
    public mutating func add(truth: [UInt16], prediction: [UInt16], unknown: Int) throws(MetricError) {
        guard truth.count == prediction.count else { throw .sizes(truth: truth.count, prediction: prediction.count) }
        let width = classes + 1
        for (t, p) in zip(truth, prediction) {
            let t = Int(t), p = Int(p)
            if t == ignoreIndex { continue }
            guard t < classes else { throw .value(Int(t), inTruth: true, classes: classes, allowed: ignoreIndex) }
            if p < classes {
                counts[t * width + p] += 1
            } else {
                guard p == unknown else { throw .value(p, inTruth: false, classes: classes, allowed: unknown) }
                counts[t * width + classes] += 1
            }
        }
    }

    public mutating func add(_ other: ConfusionMatrix) {
        precondition(other.classes == classes, "adding \(other.classes) classes to \(classes)")
        for i in counts.indices { counts[i] += other.counts[i] }
    }

    public var scores: SegmentationScores { SegmentationScores(self) }
}

/// The standard scores of one confusion matrix. Per-class values are nil where undefined (0/0).
public struct SegmentationScores: Sendable, Equatable {
    /// Pixels of each class in the ground truth.
    public var truthArea: [Int]
    /// Pixels predicted as each class (over ground-truth pixels that are not ignored).
    public var predictedArea: [Int]
    public var intersection: [Int]
    /// intersection / (truth + predicted - intersection); nil for a class absent from both.
    public var iou: [Double?]
    /// intersection / truth; nil for a class absent from the ground truth.
    public var accuracy: [Double?]
    /// The mean of the defined IoUs (mmsegmentation's `mIoU`).
    public var meanIoU: Double?
    /// The mean of the defined class accuracies (`mAcc`).
    public var meanAccuracy: Double?
    /// Correct pixels / ground-truth pixels, unknown predictions counted as wrong (`aAcc`).
    public var pixelAccuracy: Double?
    /// IoU weighted by each class's share of the ground-truth pixels (detectron2's `fwIoU`).
    public var frequencyWeightedIoU: Double?

    init(_ m: ConfusionMatrix) {
        let k = m.classes
        let truthArea = (0..<k).map { t in m.counts[(t * (k + 1))..<((t + 1) * (k + 1))].reduce(0, +) }
        let predictedArea = (0..<k).map { p in (0..<k).reduce(0) { $0 + m.count(truth: $1, predicted: p) } }
        let intersection = (0..<k).map { m.count(truth: $0, predicted: $0) }
        let iou: [Double?] = (0..<k).map { c in
            let union = truthArea[c] + predictedArea[c] - intersection[c]
            return union > 0 ? Double(intersection[c]) / Double(union) : nil
        }
        let accuracy: [Double?] = (0..<k).map { c in truthArea[c] > 0 ? Double(intersection[c]) / Double(truthArea[c]) : nil }
        (self.truthArea, self.predictedArea, self.intersection, self.iou, self.accuracy) = (truthArea, predictedArea, intersection, iou, accuracy)
        func mean(_ values: [Double?]) -> Double? {
            let defined = values.compactMap { $0 }
            return defined.isEmpty ? nil : defined.reduce(0, +) / Double(defined.count)
        }
        meanIoU = mean(iou)
        meanAccuracy = mean(accuracy)
        let total = truthArea.reduce(0, +)
        pixelAccuracy = total > 0 ? Double(intersection.reduce(0, +)) / Double(total) : nil
        frequencyWeightedIoU = total > 0
            ? (0..<k).reduce(0.0) { sum, c in sum + (truthArea[c] > 0 ? Double(truthArea[c]) / Double(total) * iou[c]! : 0) }
            : nil
    }
}

public enum MetricError: Error, Sendable, Equatable, CustomStringConvertible {
    case sizes(truth: Int, prediction: Int)
    case value(Int, inTruth: Bool, classes: Int, allowed: Int)

    public var description: String {
        switch self {
        case let .sizes(truth, prediction):
            return "the ground truth has \(truth) pixels and the prediction \(prediction)"
        case let .value(value, inTruth, classes, allowed):
            return "the \(inTruth ? "ground truth" : "prediction") holds \(value), but there are \(classes) classes "
                + "(0...\(classes - 1)) and \(allowed) is the only other value allowed (\(inTruth ? "ignored" : "unknown"))"
        }
    }
}
