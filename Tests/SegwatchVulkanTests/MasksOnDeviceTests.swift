import SegwatchCLIP
import SegwatchPipeline
import SegwatchSAM
import SegwatchSynthetic
import SegwatchTensor
import SegwatchTestSupport
import SegwatchVulkan
import Testing

// On a device, masks are upscaled, thresholded and counted where the logits are, and only bits
// come back (`Backend.maskBits`): the automatic mask generator and the tracks' prompts must give
// the masks the CPU's host path gives.
@Suite(.serialized) struct MasksOnDeviceTests {
    static let checkpoint = Fixtures.root.appendingPathComponent("sam_vit/sam_vit_tiny.pth").path

    /// A picture with a few flat shapes on a gradient, not square, not a multiple of 16.
    static let image: RGBImage = {
        let (height, width) = (150, 211)
        var pixels = [UInt8](repeating: 0, count: height * width * 3)
        for y in 0..<height {
            for x in 0..<width {
                let disc = (x - 60) * (x - 60) + (y - 70) * (y - 70) < 900, block = (120..<190).contains(x) && (30..<110).contains(y)
                let rgb: (Int, Int, Int) = disc ? (230, 40, 40) : block ? (30, 60, 220) : (x, y, (x + y) / 2)
                pixels[(y * width + x) * 3] = UInt8(rgb.0 % 256)
                pixels[(y * width + x) * 3 + 1] = UInt8(rgb.1 % 256)
                pixels[(y * width + x) * 3 + 2] = UInt8(rgb.2 % 256)
            }
        }
        return RGBImage(height: height, width: width, pixels: pixels)
    }()

    /// The same mask up to logits within rounding of a threshold, and the same scores.
    static func expectSame(_ a: GeneratedMask, _ b: GeneratedMask) {
        #expect(a.pointCoords == b.pointCoords && a.cropBox == b.cropBox)
        #expect(abs(a.predictedIou - b.predictedIou) <= 1e-4)
        #expect(abs(a.stabilityScore - b.stabilityScore) <= 1e-3 || (a.stabilityScore.isNaN && b.stabilityScore.isNaN))
        let (ma, mb) = (rleToMask(a.rle), rleToMask(b.rle))
        let both = zip(ma.pixels, mb.pixels).filter { $0 != 0 && $1 != 0 }.count
        let either = zip(ma.pixels, mb.pixels).filter { $0 != 0 || $1 != 0 }.count
        #expect(either == 0 || Double(both) / Double(either) >= 0.99, "mask IoU \(Double(both) / Double(max(either, 1)))")
        #expect(abs(a.area - b.area) <= max(2, a.area / 100))
    }

    @Test("the generator's masks on Vulkan are the CPU's")
    func generator() throws {
        let device = ProfiledBackend(try Devices.vulkan.get())
        var options = MaskGeneratorOptions()
        // Every mask kept, so that every mask is compared.
        (options.pointsPerSide, options.pointsPerBatch, options.predIouThresh, options.stabilityScoreThresh, options.boxNmsThresh) = (4, 6, 0, 0, 1)
        let onCPU = try SamAutomaticMaskGenerator(predictor: SamPredictor(model: Sam(contentsOf: Self.checkpoint, backend: Devices.cpu)),
                                                  options: options).generate(Self.image)
        let onDevice = try SamAutomaticMaskGenerator(predictor: SamPredictor(model: Sam(contentsOf: Self.checkpoint, backend: device)),
                                                     options: options).generate(Self.image)
        // The masks were made on the device, not downloaded as logits.
        #expect(device.report().contains { $0.op == "maskBits" })
        #expect(onCPU.count == 48 && onDevice.count == onCPU.count)
        for (a, b) in zip(onCPU, onDevice) { Self.expectSame(a, b) }
    }

    @Test("the tracks' prompted masks on Vulkan are the CPU's, with the same logits fed back")
    func trackPrompts() throws {
        let device = ProfiledBackend(try Devices.vulkan.get())
        let prompts = [TrackPrompt(track: 1, box: (30, 40, 90, 100), point: (60, 70), lowResLogits: nil),
                       TrackPrompt(track: 2, box: (120, 30, 190, 110), point: (150, 70), lowResLogits: nil),
                       TrackPrompt(track: 3, box: (0, 0, 211, 150), point: (5, 140), lowResLogits: nil)]
        func segment<B: Backend>(_ backend: B) throws -> [PromptedMask] {
            let predictor = SamPredictor(model: try Sam(contentsOf: Self.checkpoint, backend: backend))
            var timings = GeneratorTimings()
            return try segmentTracks(prompts, predictor: predictor, features: try predictor.setImage(Self.image), stabilityOffset: 1,
                                     minimumIoU: -1, timings: &timings).kept
        }
        let onCPU = try segment(Devices.cpu), onDevice = try segment(device)
        #expect(device.report().contains { $0.op == "maskBits" })
        #expect(onCPU.count == 3 && onDevice.count == 3)
        for (a, b) in zip(onCPU, onDevice) {
            #expect(a.track == b.track)
            Self.expectSame(a.mask, b.mask)
            #expect(a.binary == rleToMask(a.mask.rle) && b.binary == rleToMask(b.mask.rle))
            #expect(normalizedError(b.lowResLogits, a.lowResLogits) <= 1e-8)
        }
    }
}

// A size whose activations could not fit one of the device's buffers is an error when the
// labeling is set up, not a failure on the first frame.
@Suite struct DeviceLimitTests {
    @Test("clip_size over what the device's largest buffer holds is refused at start")
    func oversizedDenseFeatures() throws {
        let vulkan = try Devices.vulkan.get()
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try writeSyntheticOpenCLIP(to: folder.url.appendingPathComponent("clip"), vision: (768, 1, 64), text: (32, 1, 2), embedDim: 16)
        let clip = try CLIP.load(folder.path("clip"), backend: vulkan)
        try FrameFeaturizer(clip: clip, backend: vulkan, clipSize: 448).checkSizes()
        // At 4096 the grid's cap is 4 x 256^2 tokens of 3072 floats in the MLP: 3 GB.
        let needed = (1 + 4 * 256 * 256) * 3072 * 4
        let large = FrameFeaturizer(clip: clip, backend: vulkan, clipSize: 4096)
        if needed > vulkan.maximumValueBytes {
            #expect { try large.checkSizes() } throws: { "\($0)".contains("clip_size 4096") && "\($0)".contains("lower clip_size") }
        } else {
            try large.checkSizes()
        }
    }
}
