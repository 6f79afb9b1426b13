import SegwatchSAM
import SegwatchTensor
import Testing

/// `MaskUpscaling`, the generator's host-side `Sam.postprocess_masks`, against the backend
/// ops `SamPredictor.postprocess` runs: bilinear to 1024, the padding cropped, bilinear to the
/// image. Bit for bit, on frames wider, taller, smaller, larger and the size of the model's input.
struct MaskUpscalingTests {
    @Test(arguments: [(272, 640), (1080, 1920), (1024, 1024), (700, 300), (33, 1000), (1500, 1499)])
    func matchesPostprocessMasks(size: (height: Int, width: Int)) {
        var generator = SystemRandomNumberGenerator()
        let lowRes = Tensor(shape: [1, 1, 256, 256], values: (0..<256 * 256).map { _ in Float.random(in: -20...20, using: &generator) })
        let input = ResizeLongestSide(1024).targetSize(height: size.height, width: size.width)
        var expected = interpolate(lowRes, size: (1024, 1024), mode: .bilinear)
        expected = interpolate(expected.sliced(2, 0..<input.height).sliced(3, 0..<input.width), size: (size.height, size.width), mode: .bilinear)

        let upscaling = MaskUpscaling(lowRes: (256, 256), modelSize: 1024, inputSize: input, originalSize: size)
        #expect(upscaling.lowResCount == 256 * 256 && upscaling.outputCount == size.height * size.width)
        var out = [Float](repeating: .nan, count: upscaling.outputCount)
        var scratch = [Float](repeating: .nan, count: upscaling.scratchCount)
        upscaling.apply(lowRes.pointer, into: &out, scratch: &scratch)
        #expect(out == expected.toArray())
    }
}
