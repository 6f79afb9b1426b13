import SegwatchTensor
import SegwatchTestSupport
import Testing

@Suite(.twoThreads) struct ConvolutionTests {
    // Every path: grouped im2col, dilation, pointwise, patch embedding, depthwise (stride 1 and
    // 2, 3x3 and 5x5).
    @Test(arguments: [
        ("conv_general", Conv2dOptions(stride: 2, padding: 1, groups: 2)),
        ("conv_dilated", Conv2dOptions(stride: 1, padding: 2, dilation: 2)),
        ("conv_pointwise", Conv2dOptions()),
        ("conv_patch", Conv2dOptions(stride: 4)),
        ("conv_depthwise", Conv2dOptions(stride: 1, padding: 1, groups: 6)),
        ("conv_depthwise_s2", Conv2dOptions(stride: 2, padding: 1, groups: 6)),
        ("conv_depthwise_5", Conv2dOptions(stride: 1, padding: 2, groups: 4)),
    ])
    func conv2dMatchesTorch(name: String, options: Conv2dOptions) throws {
        let out = try conv2d(References.tensor("\(name).x"), weight: References.tensor("\(name).weight"),
                             bias: References.tensor("\(name).bias"), options)
        try expectMatches(out, "\(name).out")
    }

    // The fused activation is the activation of the convolution, on every path (the depthwise
    // kernel applies it per channel, the products after them).
    @Test(arguments: [
        ("conv_general", Conv2dOptions(stride: 2, padding: 1, groups: 2)),
        ("conv_pointwise", Conv2dOptions()),
        ("conv_depthwise", Conv2dOptions(stride: 1, padding: 1, groups: 6)),
        ("conv_depthwise_s2", Conv2dOptions(stride: 2, padding: 1, groups: 6)),
    ])
    func fusedActivationEqualsActivationAfter(name: String, options: Conv2dOptions) throws {
        let x = try References.tensor("\(name).x"), weight = try References.tensor("\(name).weight")
        let bias = try References.tensor("\(name).bias")
        for activation in [Activation.gelu, .relu] {
            var fused = options
            fused.activation = activation
            let expected = activate(conv2d(x, weight: weight, bias: bias, options), activation).toArray()
            #expect(conv2d(x, weight: weight, bias: bias, fused).toArray() == expected, "\(name) +\(activation)")
        }
    }

    // Channels-last depthwise equals permuting to NCHW, convolving and permuting back, for the
    // reference cases and their fused GELU.
    @Test(arguments: [
        ("conv_depthwise", Conv2dOptions(stride: 1, padding: 1, groups: 6)),
        ("conv_depthwise_s2", Conv2dOptions(stride: 2, padding: 1, groups: 6)),
        ("conv_depthwise_5", Conv2dOptions(stride: 1, padding: 2, groups: 4)),
    ])
    func channelsLastDepthwiseMatchesTorch(name: String, options: Conv2dOptions) throws {
        let x = try References.tensor("\(name).x").permuted([0, 2, 3, 1])
        let weight = try References.tensor("\(name).weight"), bias = try References.tensor("\(name).bias")
        try expectMatches(depthwiseConv2dChannelsLast(x, weight: weight, bias: bias, options).permuted([0, 3, 1, 2]), "\(name).out")
        var fused = options
        fused.activation = .gelu
        let expected = activate(depthwiseConv2dChannelsLast(x, weight: weight, bias: bias, options), .gelu).toArray()
        #expect(depthwiseConv2dChannelsLast(x, weight: weight, bias: bias, fused).toArray() == expected)
    }

    @Test func transposedConvolutionUpscalesByTwo() throws {
        let out = try convTranspose2d(References.tensor("conv_transpose.x"), weight: References.tensor("conv_transpose.weight"),
                                      bias: References.tensor("conv_transpose.bias"), stride: 2)
        try expectMatches(out, "conv_transpose.out")
    }

    // Guards BN folding: conv with the folded weights equals BatchNorm(conv(x)).
    @Test func batchNormFoldsIntoTheConvolution() throws {
        func t(_ name: String) throws -> Tensor { try References.tensor("conv_bn.\(name)") }
        let folded = try foldBatchNorm(weight: t("weight"), bias: t("bias"), gamma: t("gamma"), beta: t("beta"),
                                       runningMean: t("mean"), runningVar: t("var"), eps: 1e-5)
        let out = try conv2d(t("x"), weight: folded.weight, bias: folded.bias, Conv2dOptions(padding: 1))
        try expectMatches(out, "conv_bn.out", atol: 5e-6)
    }
}
