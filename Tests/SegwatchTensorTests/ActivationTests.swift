import SegwatchTensor
import SegwatchTestSupport
import Testing

@Suite(.twoThreads) struct ActivationTests {
    @Test(arguments: [(Activation.gelu, "gelu"), (.geluTanh, "gelu_tanh"), (.quickGelu, "quick_gelu"),
                      (.sigmoid, "sigmoid"), (.relu, "relu")])
    func activationMatchesTorch(activation: Activation, key: String) throws {
        try expectMatches(activate(References.tensor("activations.x"), activation), "activations.\(key)")
    }

    @Test func softmaxOfLargeLogits() throws {
        try expectMatches(softmax(References.tensor("softmax.x")), "softmax.out")
    }

    // A row with masked (-inf) entries and huge logits stays finite and sums to 1.
    @Test func softmaxWithMaskedAndHugeLogits() {
        let row: [Float] = [-.infinity, 1000, 999, -.infinity, -1000, 0, 3, 4, 5, 998]
        let out = softmax(Tensor(shape: [1, 10], values: row)).toArray()
        #expect(out.allSatisfy { $0.isFinite } && abs(out.reduce(0, +) - 1) < 1e-6)
        #expect(out[0] == 0 && out[3] == 0 && out[1] > out[2] && out[2] > out[9])
    }
}
