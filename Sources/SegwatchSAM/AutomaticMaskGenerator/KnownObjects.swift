// A keyframe helped by the objects a video already tracks: the grid's points inside a known
// object's mask are explained by it, so only the others are decoded.
import SegwatchTensor

/// What `generate(features:known:)` found.
public struct KnownObjectsResult: Sendable {
    /// The masks, in the generator's order after its NMS.
    public var masks: [GeneratedMask]
    /// For each mask, the index of the known object it is; nil for a mask of the grid.
    public var known: [Int?]
    /// The grid's points decoded: those no known mask covers.
    public var decodedPoints: Int
}

extension SamAutomaticMaskGenerator {
    /// `generate` on a whole image already encoded, with some of its objects already known,
    /// each with its mask on this image (a video's tracks, prompted on this frame with their
    /// boxes): the known masks that pass the generator's filters (predicted IoU, stability)
    /// explain the grid points inside them, which are not decoded, and meet the grid's masks in
    /// its NMS. Parts of a known object that its own mask does not cover
    /// (the generator's smaller multimask levels) are what this gives up for speed.
    ///
    /// - Parameters:
    ///   - known: the known objects' masks, in the image.
    ///   - binaries: the same masks as pixels.
    public func generate(features: SamImageFeatures<B.Value>, known: [GeneratedMask], binaries: [BinaryMask],
                         timings: inout GeneratorTimings) throws -> KnownObjectsResult {
        guard options.cropNLayers == 0 else {
            throw SamError.invalidInput("known objects cannot help a grid with crop layers (crop-n-layers \(options.cropNLayers))")
        }
        precondition(known.count == binaries.count, "\(known.count) known masks with \(binaries.count) binary masks")
        let (height, width) = features.originalSize
        // The known masks that pass the generator's filters; they alone explain points.
        let passing = known.indices.filter { k in
            (options.predIouThresh <= 0 || known[k].predictedIou > Float(options.predIouThresh))
                && (options.stabilityScoreThresh <= 0 || known[k].stabilityScore >= Float(options.stabilityScoreThresh))
        }
        let covered = coveredPixels(passing.map { binaries[$0] }, height: height, width: width)
        let points = wholeImageGrid(height: height, width: width).filter { covered[pixelIndex(of: $0, height: height, width: width)] == 0 }
        let cropBox = [0, 0, width, height]
        var data = try processBatches(points, features: features, cropBox: cropBox, imageSize: (height, width), timings: &timings)
        let start = ContinuousClock.now
        defer { timings.masks += start.duration(to: .now) }
        let grid = data.count
        data += passing.map { known[$0] }
        let survivors = suppressedIndices(data, cropBox: cropBox)
        let kept = cleaned(survivors.map(\.mask)).map { (index: survivors[$0.index].index, mask: $0.mask) }
        return KnownObjectsResult(masks: kept.map(\.mask), known: kept.map { $0.index >= grid ? passing[$0.index - grid] : nil },
                                  decodedPoints: points.count)
    }
}
