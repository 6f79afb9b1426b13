import SegwatchCLIP
import SegwatchSAM
import SegwatchTensor
import SegwatchTestSupport
import Testing

// `--precision bfloat16` rounds linear layers' weights and inputs to bfloat16 (8 significant
// bits) on CPUs with AVX512_BF16, summing in float32. Its tolerance, as the README documents
// it: every element of an output within TOLERANCE of that output's RMS of float32's.
@Suite(.enabled(if: cpuRunsBFloat16, "this CPU has no AVX512_BF16 (the CLI tests check the refusal)"))
struct BFloat16Tests {
    static let tolerance = 0.1
    static let (single, half) = (CPUBackend(engine: CPUEngine(threads: 2)), CPUBackend(engine: CPUEngine(threads: 2), multipliesInBFloat16: true))

    /// The largest |actual - expected| over the tolerance times the expected output's RMS:
    /// within tolerance at most 1.
    static func worst(_ actual: Tensor, _ expected: Tensor) -> Double {
        let (a, e) = (actual.toArray(), expected.toArray())
        let rms = (e.map { Double($0) * Double($0) }.reduce(0, +) / Double(max(e.count, 1))).squareRoot()
        return (zip(a, e).map { Double(abs($0 - $1)) }.max() ?? .infinity) / (tolerance * rms)
    }

    static func pixels(_ shape: [Int], seed: UInt64) -> Tensor {
        var random = SplitMix(seed: seed)
        return Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float(random.next() % 20001) / 10000 - 1 })
    }

    @Test("CLIP's pooled and dense features within the bfloat16 tolerance of float32's")
    func clip() throws {
        let folder = Fixtures.root.appendingPathComponent("clip_hf").path
        let (a, b) = (try CLIP.load(folder, backend: Self.half), try CLIP.load(folder, backend: Self.single))
        let pixels = Self.pixels([1, 3, 224, 320], seed: 17)
        let (x, y) = (a.vision(pixels, dense: true), b.vision(pixels, dense: true))
        let (pooled, dense) = (Self.worst(x.pooled, y.pooled), Self.worst(x.dense!, y.dense!))
        print("bfloat16: CLIP pooled \(pooled), dense \(dense) of the tolerance")
        #expect(pooled <= 1 && dense <= 1, "pooled \(pooled), dense \(dense) of the tolerance")
        #expect(x.pooled.toArray() != y.pooled.toArray())  // the products really are bfloat16's
    }

    @Test("SAM's image embedding, mask logits and IoU within the bfloat16 tolerance of float32's",
          arguments: ["sam_vit/sam_vit_tiny.pth", "mobile_sam/mobile_sam.pt"])
    func sam(checkpoint: String) throws {
        let path = Fixtures.root.appendingPathComponent(checkpoint).path
        let (a, b) = (try Sam(contentsOf: path, backend: Self.half), try Sam(contentsOf: path, backend: Self.single))
        let image = Self.pixels([1, 3, 1024, 1024], seed: 19)
        let (ea, eb) = (a.encode(image), b.encode(image))
        let prompts = [SamPrompt(points: [(400, 300, 1)], box: (200, 150, 700, 600)), SamPrompt(points: [(100, 900, 1), (120, 880, 0)])]
        let (da, db) = (try a.decode(ea, prompts: prompts, multimask: true), try b.decode(eb, prompts: prompts, multimask: true))
        let embedding = Self.worst(ea, eb), logits = Self.worst(da.lowResLogits, db.lowResLogits)
        let iou = Self.worst(da.iouPredictions, db.iouPredictions)
        print("bfloat16: \(checkpoint) embedding \(embedding), logits \(logits), IoU \(iou) of the tolerance")
        #expect(embedding <= 1 && logits <= 1 && iou <= 1, "embedding \(embedding), logits \(logits), IoU \(iou) of the tolerance")
    }
}
