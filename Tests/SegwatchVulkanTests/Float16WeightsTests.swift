import SegwatchCLIP
import SegwatchSAM
import SegwatchTensor
import SegwatchTestSupport
import SegwatchVulkan
import Testing

// `--precision float16` keeps linear layers' weights as float16 on the device (float16 holds 11
// significant bits: each weight within 0.05 % of float32's). Its tolerance, as the README
// documents it: every element of an output within 1 % of that output's RMS of float32's.
@Suite(.serialized) struct Float16WeightsTests {
    static let device = Result { () throws(VulkanError) in try VulkanBackend(float16Weights: true) }

    /// The largest |actual - expected| over 1 % of the expected output's RMS: within tolerance
    /// at most 1.
    static func worst(_ actual: Tensor, _ expected: Tensor) -> Double {
        let (a, e) = (actual.toArray(), expected.toArray())
        let rms = (e.map { Double($0) * Double($0) }.reduce(0, +) / Double(max(e.count, 1))).squareRoot()
        return (zip(a, e).map { Double(abs($0 - $1)) }.max() ?? .infinity) / (0.01 * rms)
    }

    @Test("CLIP's pooled and dense features within the float16 tolerance of float32's")
    func clip() throws {
        let half = try Self.device.get(), cpu = Devices.cpu
        let folder = Fixtures.root.appendingPathComponent("clip_hf").path
        let onDevice = try CLIP.load(folder, backend: half), onCPU = try CLIP.load(folder, backend: cpu)
        var r = SeededNumbers(state: 17)
        let pixels = r.tensor([1, 3, 224, 320])
        let a = onDevice.vision(half.upload(pixels), dense: true), b = onCPU.vision(pixels, dense: true)
        let (pooled, dense) = (Self.worst(half.download(a.pooled), b.pooled), Self.worst(half.download(a.dense!), b.dense!))
        #expect(pooled <= 1 && dense <= 1, "pooled \(pooled), dense \(dense) of the tolerance")
        // The weights really are float16: the result is not float32's.
        #expect(normalizedError(half.download(a.pooled), b.pooled) > 1e-12)
    }

    @Test("SAM's image embedding, mask logits and IoU within the float16 tolerance of float32's")
    func sam() throws {
        let half = try Self.device.get(), cpu = Devices.cpu
        let checkpoint = Fixtures.root.appendingPathComponent("sam_vit/sam_vit_tiny.pth").path
        let onDevice = try Sam(contentsOf: checkpoint, backend: half), onCPU = try Sam(contentsOf: checkpoint, backend: cpu)
        var r = SeededNumbers(state: 19)
        let image = r.tensor([1, 3, 1024, 1024])
        let (ea, eb) = (onDevice.encode(half.upload(image)), onCPU.encode(image))
        let prompts = [SamPrompt(points: [(400, 300, 1)], box: (200, 150, 700, 600)), SamPrompt(points: [(100, 900, 1), (120, 880, 0)])]
        let (da, db) = (try onDevice.decode(ea, prompts: prompts, multimask: true), try onCPU.decode(eb, prompts: prompts, multimask: true))
        let embedding = Self.worst(half.download(ea), eb), logits = Self.worst(half.download(da.lowResLogits), db.lowResLogits)
        let iou = Self.worst(half.download(da.iouPredictions), db.iouPredictions)
        #expect(embedding <= 1 && logits <= 1 && iou <= 1, "embedding \(embedding), logits \(logits), IoU \(iou) of the tolerance")
    }
}
