/// Pointwise nonlinearities, with torch's definitions.
public enum Activation: String, Sendable, CaseIterable {
    /// `nn.GELU()`: `x/2 * (1 + erf(x/sqrt 2))`.
    case gelu
    /// `nn.GELU(approximate="tanh")`.
    case geluTanh
    /// CLIP's `x * sigmoid(1.702 x)`.
    case quickGelu
    case relu
    case sigmoid
}

/// Applies `activation` to every element.
public func activate(_ x: Tensor, _ activation: Activation) -> Tensor {
    let x = x.contiguous(), result = Tensor(uninitialized: x.shape)
    let input = x.pointer, output = result.pointer
    let kernel = switch activation {
    case .gelu: kernels.gelu
    case .geluTanh: kernels.geluTanh
    case .quickGelu: kernels.quickGelu
    case .relu: kernels.relu
    case .sigmoid: kernels.sigmoid
    }
    parallelFor(x.count, grain: 4096) { range in
        kernel(input + range.lowerBound, output + range.lowerBound, range.count)
    }
    return result
}

/// Softmax over the last dimension. A row of all `-infinity` (fully masked) becomes zeros
/// rather than NaN.
public func softmax(_ x: Tensor) -> Tensor {
    let width = x.shape.last ?? 1
    let result = x.copied(), data = result.pointer
    parallelFor(result.count / max(width, 1), grain: 8) { rows in
        for r in rows { kernels.softmaxRow(data + r * width, width) }
    }
    return result
}
