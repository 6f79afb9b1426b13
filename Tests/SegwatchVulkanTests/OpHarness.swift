import SegwatchTensor
import SegwatchTestSupport
import SegwatchVulkan

/// One op with its inputs, run the same way on any backend: the harness's unit. Ops are
/// described as data so that one generic `evaluate` runs them on the CPU backend (the
/// reference) and on the Vulkan backend.
struct OpCase: CustomStringConvertible, @unchecked Sendable {
    var name: String
    var inputs: [Tensor]
    /// Views taken of the inputs on the device before the op (strided inputs).
    var views: [InputView] = []
    var op: Op
    /// The largest normalized squared error allowed: sum (a - b)^2 / sum b^2 (ggml's NMSE).
    var tolerance: Double = 1e-10

    var description: String { "\(name) on \(inputs.map(\.shape))" }
}

enum InputView {
    case none
    case permute([Int])
    case slice(dim: Int, Range<Int>)
    case expand([Int])
}

enum Op {
    case contiguous
    case reshape([Int])
    case select(dim: Int, index: Int)
    case concat(dim: Int)
    case pad([(Int, Int)], Float)
    case windowPartition(Int)
    case windowRoundTrip(Int)
    case matmul
    case linear(bias: Bool, residual: Bool, packed: Bool)
    case linearActivation(Activation, packed: Bool)
    case conv2d(Conv2dOptions, bias: Bool)
    case depthwiseChannelsLast(Conv2dOptions, bias: Bool)
    case convTranspose(stride: Int, bias: Bool)
    case layerNorm(residual: Bool)
    case layerNorm2d
    case activate(Activation)
    case affine(Float, Float)
    case softmax
    case attention(scale: Float, causal: Bool, bias: Bool)
    case relativeAttention(queryGrid: (Int, Int), keyGrid: (Int, Int))
    case relativeTerms(queryGrid: (Int, Int), keyGrid: (Int, Int), height: Bool)
    case interpolate(Int, Int, InterpolationMode)
    case binary(BinaryOperation)
    case mean(dim: Int, keepDim: Bool)
}

/// Runs `c` on `backend`; returns the result and, for argmax, nothing else is needed.
func evaluate<B: Backend>(_ c: OpCase, on backend: B) -> Tensor {
    var x = c.inputs.map { backend.upload($0) }
    for (i, view) in c.views.enumerated() {
        switch view {
        case .none: break
        case .permute(let order): x[i] = backend.permute(x[i], order)
        case .slice(let dim, let range): x[i] = backend.slice(x[i], dim: dim, range)
        case .expand(let shape): x[i] = backend.expand(x[i], shape)
        }
    }
    let result: B.Value
    switch c.op {
    case .contiguous: result = backend.contiguous(x[0])
    case .reshape(let shape): result = backend.reshape(x[0], shape)
    case .select(let dim, let index): result = backend.contiguous(backend.select(x[0], dim: dim, index))
    case .concat(let dim): result = backend.concat(x, dim: dim)
    case .pad(let padding, let value): result = backend.pad(x[0], padding.map { (before: $0.0, after: $0.1) }, value: value)
    case .windowPartition(let size): result = backend.windowPartition(x[0], size: size).windows
    case .windowRoundTrip(let size):
        let shape = backend.shape(x[0])
        let (windows, padded) = backend.windowPartition(x[0], size: size)
        result = backend.windowUnpartition(backend.affine(windows, scale: 2, shift: 1), size: size, padded: padded,
                                           original: (shape[1], shape[2]))
    case .matmul: result = backend.matmul(x[0], x[1])
    case .linear(let bias, let residual, let packed):
        let weight = packed ? backend.linearWeight(x[1]) : x[1]
        result = backend.linear(x[0], weight: weight, bias: bias ? x[2] : nil, adding: residual ? x[3] : nil)
    case .linearActivation(let activation, let packed):
        let weight = packed ? backend.linearWeight(x[1]) : x[1]
        result = backend.linear(x[0], weight: weight, bias: x[2], activation: activation)
    case .conv2d(let options, let bias): result = backend.conv2d(x[0], weight: x[1], bias: bias ? x[2] : nil, options)
    case .depthwiseChannelsLast(let options, let bias):
        result = backend.depthwiseConv2dChannelsLast(x[0], weight: x[1], bias: bias ? x[2] : nil, options)
    case .convTranspose(let stride, let bias): result = backend.convTranspose2d(x[0], weight: x[1], bias: bias ? x[2] : nil, stride: stride)
    case .layerNorm(let residual):
        result = residual ? backend.layerNorm(x[0], adding: x[3], weight: x[1], bias: x[2], eps: 1e-5)
            : backend.layerNorm(x[0], weight: x[1], bias: x[2], eps: 1e-5)
    case .layerNorm2d: result = backend.layerNorm2d(x[0], weight: x[1], bias: x[2], eps: 1e-6)
    case .activate(let activation): result = backend.activate(x[0], activation)
    case .affine(let scale, let shift): result = backend.affine(x[0], scale: scale, shift: shift)
    case .softmax: result = backend.softmax(x[0])
    case .attention(let scale, let causal, let bias):
        result = backend.attention(q: x[0], k: x[1], v: x[2], AttentionOptions(scale: scale, causal: causal, bias: bias ? x[3] : nil))
    case .relativeAttention(let queryGrid, let keyGrid):
        let terms = backend.relativePositionBias(q: x[0], tableH: x[3], tableW: x[4], queryGrid: queryGrid, keyGrid: keyGrid)
        result = backend.attention(q: x[0], k: x[1], v: x[2], AttentionOptions(scale: 0.3, relativePosition: terms))
    case .relativeTerms(let queryGrid, let keyGrid, let height):
        let terms = backend.relativePositionBias(q: x[0], tableH: x[1], tableW: x[2], queryGrid: queryGrid, keyGrid: keyGrid)
        result = height ? terms.height : terms.width
    case .interpolate(let h, let w, let mode): result = backend.interpolate(x[0], size: (h, w), mode: mode)
    case .binary(let operation): result = backend.binary(x[0], operation, x[1])
    case .mean(let dim, let keepDim): result = backend.mean(x[0], dim: dim, keepDim: keepDim)
    }
    return backend.download(result)
}

/// ggml's normalized mean squared error of `actual` against `expected`.
func normalizedError(_ actual: Tensor, _ expected: Tensor) -> Double {
    let a = actual.toArray(), e = expected.toArray()
    var error = 0.0, norm = 0.0
    for (x, y) in zip(a, e) {
        if x.isNaN != y.isNaN { return .infinity }
        if x.isNaN { continue }
        error += Double(x - y) * Double(x - y)
        norm += Double(y) * Double(y)
    }
    return norm == 0 ? error : error / norm
}

/// Reproducible random numbers and tensors (the support target's SplitMix), so that a failing
/// case can be run again.
struct SeededNumbers {
    private var generator: SplitMix

    init(state: UInt64) { generator = SplitMix(seed: state) }

    mutating func next() -> UInt64 { generator.next() }

    /// Uniform in [-1, 1).
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }

    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }

    mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor {
        Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in float() * scale })
    }
}
