// Deterministic random weights for benchmarks: the published layouts' names and shapes with
// values that need no download. Timing does not depend on the values.
import SegwatchTensor

/// A tensor of deterministic values in [-1, 1) (xorshift from `seed`).
public func benchTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    let tensor = Tensor(uninitialized: shape)
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    for i in 0..<tensor.count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        tensor.pointer[i] = Float(state >> 40) / Float(1 << 23) - 1
    }
    return tensor
}

/// Named tensors of a synthetic state dict, each from its own seed, scaled so that activations
/// stay finite through a whole model (weights of about 0.02, norms' scales about 1).
struct SyntheticStateDict {
    private(set) var tensors: [(name: String, tensor: Tensor)] = []
    private var seed: UInt64

    init(seed: UInt64) { self.seed = seed }

    mutating func add(_ name: String, _ shape: [Int], scale: Float = 0.02, offset: Float = 0) {
        seed += 1
        let values = benchTensor(shape, seed: seed)
        for i in 0..<values.count { values.pointer[i] = values.pointer[i] * scale + offset }
        tensors.append((name, values))
    }
}
