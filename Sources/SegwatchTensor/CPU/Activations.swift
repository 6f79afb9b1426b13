import Foundation

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
    parallelFor(x.count, grain: 4096) { range in
        switch activation {
        case .gelu:
            for i in range {
                let v = input[i]
                output[i] = 0.5 * v * (1 + erff(v * 0.70710678118654752))
            }
        case .geluTanh:
            for i in range {
                let v = input[i]
                output[i] = 0.5 * v * (1 + tanhf(0.79788456080286536 * (v + 0.044715 * v * v * v)))
            }
        case .quickGelu:
            for i in range {
                let v = input[i]
                output[i] = v / (1 + expf(-1.702 * v))
            }
        case .relu:
            for i in range { output[i] = max(input[i], 0) }
        case .sigmoid:
            for i in range { output[i] = 1 / (1 + expf(-input[i])) }
        }
    }
    return result
}

/// Softmax over the last dimension.
public func softmax(_ x: Tensor) -> Tensor {
    let width = x.shape.last ?? 1
    let result = x.contiguous().copied()
    softmaxRows(result.pointer, rows: result.count / max(width, 1), width: width)
    return result
}

/// Softmax of each row in place. A row of all `-infinity` (fully masked) becomes zeros rather
/// than NaN.
func softmaxRows(_ data: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int? = nil) {
    let stride = stride ?? width
    parallelFor(rows, grain: 8) { range in
        for r in range { softmaxRow(data + r * stride, width) }
    }
}

@inline(__always)
func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ width: Int) {
    var largest = -Float.infinity
    for i in 0..<width { largest = max(largest, row[i]) }
    if largest == -.infinity {
        row.update(repeating: 0, count: width)
        return
    }
    var sum: Float = 0
    for i in 0..<width {
        let e = expf(row[i] - largest)
        row[i] = e
        sum += e
    }
    let inverse = 1 / sum
    for i in 0..<width { row[i] *= inverse }
}
