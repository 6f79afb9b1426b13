import SegwatchSAM
import SegwatchTensor
import SegwatchTestSupport
import SegwatchVulkan
import Testing

// The automatic mask generator makes its masks on the device (upscaled, thresholded and counted
// there, only bits downloaded): it must give the masks the CPU's host path gives.
@Suite struct GeneratorOnDeviceTests {
    @Test("the generator's masks on Vulkan are the CPU's")
    func masksMatchTheCPU() throws {
        let vulkan = try Devices.vulkan.get()
        let checkpoint = Fixtures.root.appendingPathComponent("sam_vit/sam_vit_tiny.pth").path
        // A picture with a few flat shapes on a gradient, not square, not a multiple of 16.
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
        let image = RGBImage(height: height, width: width, pixels: pixels)
        var options = MaskGeneratorOptions()
        // Every mask kept, so that every mask is compared.
        (options.pointsPerSide, options.pointsPerBatch, options.predIouThresh, options.stabilityScoreThresh, options.boxNmsThresh) = (4, 6, 0, 0, 1)
        let onCPU = try SamAutomaticMaskGenerator(predictor: SamPredictor(model: Sam(contentsOf: checkpoint, backend: Devices.cpu)),
                                                  options: options).generate(image)
        let device = ProfiledBackend(vulkan)
        let onDevice = try SamAutomaticMaskGenerator(predictor: SamPredictor(model: Sam(contentsOf: checkpoint, backend: device)),
                                                     options: options).generate(image)
        // The masks were made on the device, not downloaded as logits.
        #expect(device.report().contains { $0.op == "maskBits" })
        #expect(onCPU.count == 48 && onDevice.count == onCPU.count)
        for (a, b) in zip(onCPU, onDevice) {
            #expect(a.pointCoords == b.pointCoords && a.cropBox == b.cropBox)
            #expect(abs(a.predictedIou - b.predictedIou) <= 1e-4)
            #expect(abs(a.stabilityScore - b.stabilityScore) <= 1e-3 || (a.stabilityScore.isNaN && b.stabilityScore.isNaN))
            // Logits within rounding of the threshold may fall either side of it.
            let (ma, mb) = (rleToMask(a.rle), rleToMask(b.rle))
            let both = zip(ma.pixels, mb.pixels).filter { $0 != 0 && $1 != 0 }.count
            let either = zip(ma.pixels, mb.pixels).filter { $0 != 0 || $1 != 0 }.count
            #expect(either == 0 || Double(both) / Double(either) >= 0.99, "mask IoU \(Double(both) / Double(max(either, 1)))")
            #expect(abs(a.area - b.area) <= max(2, a.area / 100))
        }
    }
}
