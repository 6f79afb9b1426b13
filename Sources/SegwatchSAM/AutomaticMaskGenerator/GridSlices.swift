// The automatic mask generator's point grid decoded a slice at a time: a video's keyframe
// spread over several analyzed frames, each slice against the frame it comes with, so that no
// frame waits for the whole grid.
import SegwatchTensor

/// The generator's whole-image grid in `count` slices of whole batches, decoded one slice per
/// call against that call's features. On one picture, all slices decoded give exactly
/// `generate`'s masks: the same batches in the same order, then the same NMS (and small-region
/// clean-up). Only grids without crop layers are sliced (crops need encoders of their own).
public struct GridSlices<B: Backend>: Sendable {
    public let generator: SamAutomaticMaskGenerator<B>
    /// Slices in all: at most the grid's batches.
    public let count: Int
    /// Slices decoded so far.
    public private(set) var decoded = 0
    /// Every slice's masks so far, before the NMS across them.
    private var found: [GeneratedMask] = []

    /// - Parameter slices: at least 1; fewer are made when the grid has fewer batches.
    public init(generator: SamAutomaticMaskGenerator<B>, slices: Int) throws {
        guard generator.options.cropNLayers == 0 else {
            throw SamError.invalidInput("a grid with crop layers (crop-n-layers \(generator.options.cropNLayers)) cannot be sliced")
        }
        guard slices >= 1 else { throw SamError.invalidInput("slices must be at least 1, not \(slices)") }
        self.generator = generator
        count = min(slices, batches(generator))
    }

    public var isComplete: Bool { decoded == count }

    /// The next slice's batches decoded against `features`: its masks after the generator's
    /// filters, and, among them, those that survive its NMS within the slice. Points where
    /// `explained` (one byte per pixel of the frame) is set are left out: objects already known
    /// there (a video's tracks) stand for what they would find.
    public mutating func decodeNext(features: SamImageFeatures<B.Value>, explained: [UInt8]? = nil,
                                    timings: inout GeneratorTimings) throws -> [GeneratedMask] {
        precondition(!isComplete, "every slice of the grid is decoded")
        let (height, width) = features.originalSize
        precondition(explained.map { $0.count == height * width } ?? true, "explained pixels of another size than the frame")
        let grid = generator.wholeImageGrid(height: height, width: width)
        let total = batches(generator), perBatch = generator.options.pointsPerBatch
        var points = Array(grid[min(grid.count, decoded * total / count * perBatch)..<min(grid.count, (decoded + 1) * total / count * perBatch)])
        if let explained {
            points.removeAll { explained[pixelIndex(of: $0, height: height, width: width)] != 0 }
        }
        let slice = try generator.processBatches(points, features: features, cropBox: [0, 0, width, height], imageSize: (height, width),
                                                 timings: &timings)
        decoded += 1
        found += slice
        let start = ContinuousClock.now
        defer { timings.masks += start.duration(to: .now) }
        return generator.suppressed(slice, cropBox: [0, 0, width, height])
    }

    /// Every slice's masks after the generator's NMS across them (and its small-region clean-up),
    /// in `generate`'s order; the frame of the last slice gives the crop box.
    public func masks() -> [GeneratedMask] {
        guard let last = found.last else { return [] }
        return generator.cleaned(generator.suppressed(found, cropBox: last.cropBox)).map(\.mask)
    }
}

/// The batches of the generator's whole-image grid.
private func batches<B>(_ generator: SamAutomaticMaskGenerator<B>) -> Int {
    (generator.pointGrids[0].count + generator.options.pointsPerBatch - 1) / generator.options.pointsPerBatch
}
