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
    apply(activation, x.pointer, result.pointer, x.count)
    return result
}

/// Applies `activation` to every element of a contiguous tensor the caller owns.
func activateInPlace(_ x: Tensor, _ activation: Activation) {
    precondition(x.isContiguous, "activate in place: a view of shape \(x.shape)")
    apply(activation, x.pointer, x.pointer, x.count)
}

private func apply(_ activation: Activation, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    let kernel = kernels.activation(activation)
    parallelFor(count, grain: 4096) { range in
        kernel(input + range.lowerBound, output + range.lowerBound, range.count)
    }
}

extension KernelSet {
    func activation(_ activation: Activation) -> Unary {
        switch activation {
        case .gelu: gelu
        case .geluTanh: geluTanh
        case .quickGelu: quickGelu
        case .relu: relu
        case .sigmoid: sigmoid
        }
    }
}

/// Softmax over the last dimension. A row of all `-infinity` (fully masked) becomes zeros
/// rather than NaN.
public func softmax(_ x: Tensor) -> Tensor {
    let width = x.shape.last ?? 1
    let result = x.copied(), data = result.pointer
    parallelFor(result.count / max(width, 1), grain: max(8, 1024 / max(width, 1))) { rows in
        kernels.softmaxRows(data + rows.lowerBound * width, rows.count, width)
    }
    return result
}
