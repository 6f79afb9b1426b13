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
    /// The largest `error(vector result, exact)` over vectors of eight nearby points stepping
    /// through `range`.
    private func worstError(_ range: Range<Float>, step: Float, spread: Float, _ vector: (Vector) -> Vector,
                            exact: (Double) -> Double, error: (Double, Double) -> Double) -> Double {
        var worst: Double = 0
        var x = range.lowerBound
        while x < range.upperBound {
            var lanes = Vector()
            for lane in 0..<8 { lanes[lane] = x + Float(lane) * spread }
            let result = vector(lanes)
            for lane in 0..<8 { worst = max(worst, error(Double(result[lane]), exact(Double(lanes[lane])))) }
            x += step
        }
        return worst
    }

    // Guards the vector exp behind softmax, sigmoid and QuickGELU: within a few ulp of the
    // double-precision exp across the float range, 0 and infinity past it.
    @Test func vectorExpIsAccurate() {
        let worst = worstError(-87..<88.5, step: 0.0173, spread: 0.0011, exp, exact: Foundation.exp) { abs($0 - $1) / $1 }
        #expect(worst < 3e-7, "max relative error \(worst)")
        let edges = exp(Vector(-200, -88, -87.3, 0, 1, 88.7, 89, .infinity))
        #expect(edges[0] == 0 && edges[1] == 0 && edges[3] == 1 && edges[6] == .infinity && edges[7] == .infinity)
        #expect(edges[2] > 0 && edges[5].isFinite)
        #expect(abs(edges[4] - 2.7182817) < 1e-6)
    }

    // Guards the vector erf behind GELU: within a few float ulp of erf everywhere.
    @Test func vectorErfIsAccurate() {
        let worst = worstError(-6..<6, step: 0.0091, spread: 0.0007, erf, exact: Foundation.erf) { abs($0 - $1) }
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
