import Foundation
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

@testable import SegwatchTensor

struct VectorMathTests {
    // Guards the vector exp behind softmax, sigmoid and QuickGELU: within a few ulp of the
    // double-precision exp across the float range, 0 and infinity past it.
    @Test func vectorExpIsAccurate() {
        var worst: Double = 0
        var x: Float = -87
        while x < 88.5 {
            var lanes = Vector()
            for lane in 0..<8 { lanes[lane] = x + Float(lane) * 0.0011 }
            let result = exp(lanes)
            for lane in 0..<8 {
                let exact = Foundation.exp(Double(lanes[lane]))
                worst = max(worst, abs(Double(result[lane]) - exact) / exact)
            }
            x += 0.0173
        }
        #expect(worst < 3e-7, "max relative error \(worst)")
        let edges = exp(Vector(-200, -88, -87.3, 0, 1, 88.7, 89, .infinity))
        #expect(edges[0] == 0 && edges[1] == 0 && edges[3] == 1 && edges[6] == .infinity && edges[7] == .infinity)
        #expect(edges[2] > 0 && edges[5].isFinite)
        #expect(abs(edges[4] - 2.7182817) < 1e-6)
    }

    // Guards the vector erf behind GELU: within a few float ulp of erf everywhere.
    @Test func vectorErfIsAccurate() {
        var worst: Double = 0
        var x: Float = -6
        while x < 6 {
            var lanes = Vector()
            for lane in 0..<8 { lanes[lane] = x + Float(lane) * 0.0007 }
            let result = erf(lanes)
            for lane in 0..<8 { worst = max(worst, abs(Double(result[lane]) - Foundation.erf(Double(lanes[lane])))) }
            x += 0.0091
        }
        #expect(worst < 5e-7, "max absolute error \(worst)")
        #expect(erf(Vector(repeating: 0))[0] == 0 && abs(erf(Vector(repeating: 100))[0] - 1) < 2e-7)
    }

    // A row with masked (-inf) entries and huge logits stays finite and sums to 1.
    @Test func softmaxWithMaskedAndHugeLogits() {
        let row: [Float] = [-.infinity, 1000, 999, -.infinity, -1000, 0, 3, 4, 5, 998]
        let out = softmax(Tensor(shape: [1, 10], values: row)).toArray()
        #expect(out.allSatisfy { $0.isFinite } && abs(out.reduce(0, +) - 1) < 1e-6)
        #expect(out[0] == 0 && out[3] == 0 && out[1] > out[2] && out[2] > out[9])
    }
}
