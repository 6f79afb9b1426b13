import SegwatchTensor
import SegwatchTestSupport
import Testing

@Suite(.twoThreads) struct NormalizationTests {
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

    // Guards the fused residual: LayerNorm of a sum formed a row at a time equals LayerNorm of
    // the stored sum (bit for bit: the same adds, the same row kernel), with equal shapes, with
    // the left side shared by a batch (batch 1), with a strided operand, and through the
    // fallback for other broadcasts.
    @Test func layerNormAddingAResidual() {
        func values(_ shape: [Int], _ seed: Int) -> Tensor {
            Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { Float(($0 * 7919 + seed) % 211) / 17 - 6 })
        }
        let w = values([37], 3), b = values([37], 5)
        let residual = values([3, 11, 37], 1)
        for x in [values([3, 11, 37], 2), values([1, 11, 37], 4), values([3, 37, 11], 6).permuted([0, 2, 1]), values([11, 37], 8)] {
            let fused = layerNorm(x, adding: residual, weight: w, bias: b, eps: 1e-5)
            let separate = layerNorm(binary(x, .add, residual), weight: w, bias: b, eps: 1e-5)
            #expect(fused.shape == separate.shape && fused.toArray() == separate.toArray(), "x \(x.shape)")
        }
    }
}
