import SegwatchTensor
import Testing

struct ActivationTests {
    init() { CPUThreads.set(2) }

    @Test(arguments: [(Activation.gelu, "gelu"), (.geluTanh, "gelu_tanh"), (.quickGelu, "quick_gelu"),
                      (.sigmoid, "sigmoid"), (.relu, "relu")])
    func activationMatchesTorch(activation: Activation, key: String) throws {
        try expectMatches(activate(References.tensor("activations.x"), activation), "activations.\(key)")
    }

    @Test func softmaxOfLargeLogits() throws {
        try expectMatches(softmax(References.tensor("softmax.x")), "softmax.out")
    }
}
