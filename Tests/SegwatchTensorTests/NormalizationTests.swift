import SegwatchTensor
import Testing

struct NormalizationTests {
    init() { CPUThreads.set(2) }

    @Test func layerNormOverTheLastDimension() throws {
        let out = try layerNorm(References.tensor("layer_norm.x"), weight: References.tensor("layer_norm.weight"),
                                bias: References.tensor("layer_norm.bias"), eps: 1e-5)
        try expectMatches(out, "layer_norm.out")
    }

    @Test func layerNorm2dOverChannels() throws {
        let out = try layerNorm2d(References.tensor("layer_norm_2d.x"), weight: References.tensor("layer_norm_2d.weight"),
                                  bias: References.tensor("layer_norm_2d.bias"), eps: 1e-6)
        try expectMatches(out, "layer_norm_2d.out")
    }

    // Guards the pixel blocking of LayerNorm2d: a plane larger than one block (256 pixels),
    // checked against LayerNorm over the last dimension of the channels-last view.
    @Test func layerNorm2dAgreesWithLayerNormOnLargePlanes() {
        let channels = 5, plane = 17 * 31
        let x = Tensor(shape: [2, channels, 17, 31], values: (0..<(2 * channels * plane)).map { Float(($0 * 7919) % 113) / 13 - 4 })
        let w = Tensor(shape: [channels], values: [1, 2, 0.5, -1, 3]), b = Tensor(shape: [channels], values: [0, 1, 2, 3, 4])
        let channelsFirst = layerNorm2d(x, weight: w, bias: b, eps: 1e-6)
        let channelsLast = layerNorm(x.permuted([0, 2, 3, 1]), weight: w, bias: b, eps: 1e-6).permuted([0, 3, 1, 2])
        let difference = zip(channelsFirst.toArray(), channelsLast.toArray()).map { abs($0 - $1) }.max() ?? 0
        #expect(difference < 1e-5)
    }
}
