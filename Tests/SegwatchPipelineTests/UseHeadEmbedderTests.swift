import Foundation
import SegwatchCLIP
import SegwatchDINOv2
@testable import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor
import SegwatchTestSupport
import SegwatchUSE
import Testing

/// The USE head in the labeling, on the fixture models (CLIP 64 wide, 3 blocks; DINOv2 48 wide,
/// 3 layers): what it reads of a frame and how each segment's inputs are pooled.
struct UseHeadEmbedderTests {
    private static let (width, height) = (70, 52)

    private struct Models {
        let sam: Sam<CPUBackend>
        let clip: CLIP<CPUBackend>
        let dino: Dinov2Model<CPUBackend>
        let labels: LabelEmbeddings
    }

    private func models() throws -> Models {
        let backend = testBackend
        let clip = try CLIP.load(Fixtures.root.appendingPathComponent("clip_hf").path, backend: backend)
        var random = SplitMix(seed: 11)
        let names = ["car", "road", "sky"]
        let values = names.flatMap { _ in normalized((0..<clip.config.embedDim).map { _ in Float(random.next() % 1000) / 1000 - 0.5 }[...]) }
        return Models(sam: try Sam(contentsOf: Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path, backend: backend),
                      clip: clip, dino: try Dinov2Model.load(Fixtures.root.appendingPathComponent("dinov2").path, backend: backend),
                      labels: LabelEmbeddings(labels: try names.map { try VocabularyLabel(parsing: $0, origin: "test") },
                                              dimension: clip.config.embedDim, values: values))
    }

    private func labeler(_ m: Models, head: LearnedHead<CPUBackend>?) throws -> ImageLabeler<CPUBackend> {
        var options = LabelerOptions()
        (options.clipSize, options.dinoSize) = (64, 56)
        return try ImageLabeler(sam: m.sam, clip: m.clip, backend: testBackend, labels: m.labels, head: head, options: options)
    }

    /// A picture with some structure, and rectangles of it as masks (the last one empty).
    private func picture() -> RGBImage {
        let pixels = (0..<(Self.width * Self.height * 3)).map { UInt8(truncatingIfNeeded: ($0 * 37) ^ ($0 / 211)) }
        return RGBImage(height: Self.height, width: Self.width, pixels: pixels)
    }

    private func masks() -> [RLE] {
        [(0..<52, 0..<70), (5..<30, 10..<44), (20..<52, 50..<70), (0..<0, 0..<0)].map { rows, columns in
            var pixels = [UInt8](repeating: 0, count: Self.width * Self.height)
            for y in rows { for x in columns { pixels[y * Self.width + x] = 1 } }
            return maskToRLE(BinaryMask(height: Self.height, width: Self.width, pixels: pixels))
        }
    }

    private func shape(_ m: Models, clipLevels: Int, dinoLevels: Int) -> UseHeadShape {
        UseHeadShape(embed: m.clip.config.embedDim, clipWidth: m.clip.config.vision.width, dinoWidth: m.dino.config.hiddenSize,
                     clipLevels: clipLevels, dinoLevels: dinoLevels)
    }

    // proj at zero: the head's embedding is the training-free one, whatever else it reads.
    @Test func aZeroResidualGivesTheTrainingFreeEmbeddings() throws {
        let m = try models()
        let head = try UseHead.trainingFree(shape(m, clipLevels: 2, dinoLevels: 2), clipLevels: [1, 3], dinoLevels: [2, 3], logitScale: 4.6)
        let plain = try labeler(m, head: nil), withHead = try labeler(m, head: .use(head, dino: m.dino))
        let picture = picture(), masks = masks()
        let expected = try plain.embedder.embed(plain.denseFeatures(picture), masks: masks)
        let actual = try withHead.embedder.embed(withHead.denseFeatures(picture), masks: masks)
        #expect(expected.count == 4 && expected[3] == nil && actual[3] == nil)
        for n in 0..<3 { expectClose(try #require(actual[n]), try #require(expected[n]), atol: 1e-6, "mask \(n)") }
        #expect(!withHead.computesWindows && plain.computesWindows)
    }

    // With a residual that reads every input, each segment's embedding is the head's on its own
    // averages: of the dense features and CLIP's levels over CLIP's grid, of DINOv2's levels
    // (patch rows only) over DINOv2's grid, with the frame's two image tokens.
    @Test func eachModelsFeaturesArePooledOnItsOwnGrid() throws {
        let m = try models()
        let shape = shape(m, clipLevels: 2, dinoLevels: 1)
        var parameters = try UseHead.trainingFree(shape, clipLevels: [2, 3], dinoLevels: [1], logitScale: 4.6).parameters
        var random = SplitMix(seed: 5)
        parameters["proj.weight"] = Tensor(shape: [shape.embed, shape.features],
                                           values: (0..<(shape.embed * shape.features)).map { _ in Float(random.next() % 2001) / 10000 - 0.1 })
        let head = try UseHead(shape: shape, parameters: parameters, clipLevels: [2, 3], dinoLevels: [1])
        let labeler = try labeler(m, head: .use(head, dino: m.dino))
        let picture = picture(), masks = masks()
        let features = labeler.denseFeatures(picture)
        let frame = try #require(features.head)
        #expect(frame.dinoGrid == denseGridFor(height: Self.height, width: Self.width, patch: 14, clipSize: 56))
        #expect(frame.dinoLevels[0].shape == [frame.dinoGrid.h * frame.dinoGrid.w, 48])
        #expect(frame.clipLevels.map(\.shape) == [[features.grid.h * features.grid.w, 64], [features.grid.h * features.grid.w, 64]])
        let embedded = try labeler.embedder.embed(features, masks: masks)
        #expect(embedded[3] == nil)
        func average(_ rows: Tensor, _ weights: [Float]) -> [Float] {
            let width = rows.shape[1], values = rows.toArray(), total = weights.reduce(0, +)
            return (0..<width).map { d in weights.indices.reduce(Float(0)) { $0 + weights[$1] * values[$1 * width + d] } / total }
        }
        for n in 0..<3 {
            let clipWeights = patchCoverage(masks[n], grid: features.grid), dinoWeights = patchCoverage(masks[n], grid: frame.dinoGrid)
            let input = UseHeadInput(
                use: Tensor(shape: [1, shape.embed], values: average(features.values, clipWeights)),
                clipLevels: Tensor(shape: [2, 1, 64], values: frame.clipLevels.flatMap { average($0, clipWeights) }),
                dinoLevels: Tensor(shape: [1, 1, 48], values: average(frame.dinoLevels[0], dinoWeights)),
                clipImage: frame.clipImage.reshaped([1, shape.embed]), dinoCLS: frame.dinoCLS.reshaped([1, 48]))
            expectClose(try #require(embedded[n]), try head(input).toArray(), atol: 2e-6, "mask \(n)")
        }
    }
}
