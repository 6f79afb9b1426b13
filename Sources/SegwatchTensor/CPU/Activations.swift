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
            map(range, input, output, { v in 0.5 * v * (1 + erf(v * 0.70710678118654752)) },
                { v in 0.5 * v * (1 + erff(v * 0.70710678118654752)) })
        case .geluTanh:
            for i in range {
                let v = input[i]
                output[i] = 0.5 * v * (1 + tanhf(0.79788456080286536 * (v + 0.044715 * v * v * v)))
            }
        case .quickGelu:
            map(range, input, output, { v in v / (1 + exp(-1.702 * v)) }, { v in v / (1 + expf(-1.702 * v)) })
        case .relu:
            for i in range { output[i] = max(input[i], 0) }
        case .sigmoid:
            map(range, input, output, { v in 1 / (1 + exp(-v)) }, { v in 1 / (1 + expf(-v)) })
        }
    }
    return result
}

/// Applies `vector` to eight elements at a time over `range`, `scalar` to the rest.
@inline(__always)
private func map(_ range: Range<Int>, _ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                 _ vector: (Vector) -> Vector, _ scalar: (Float) -> Float) {
    var i = range.lowerBound
    while i + 8 <= range.upperBound {
        output.store(vector(input.vector(at: i)), at: i)
        i += 8
    }
    while i < range.upperBound {
        output[i] = scalar(input[i])
        i += 1
    }
}

/// Softmax over the last dimension. A row of all `-infinity` (fully masked) becomes zeros
/// rather than NaN.
public func softmax(_ x: Tensor) -> Tensor {
    let width = x.shape.last ?? 1
    let result = x.copied(), data = result.pointer
    parallelFor(result.count / max(width, 1), grain: 8) { rows in
        for r in rows { softmaxRow(data + r * width, width) }
    }
    return result
}

@inline(__always)
func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ width: Int) {
    let whole = width & ~7
    var largest = Vector(repeating: -.infinity)
    var i = 0
    while i < whole {
        let v = row.vector(at: i)
        largest = largest.replacing(with: v, where: v .> largest)
        i += 8
    }
    var top = largest.max()
    for j in whole..<width { top = max(top, row[j]) }
    if top == -.infinity {
        row.update(repeating: 0, count: width)
        return
    }
    var sums = Vector.zero
    i = 0
    while i < whole {
        let e = exp(row.vector(at: i) - top)
        row.store(e, at: i)
        sums += e
        i += 8
    }
    var sum = sums.sum()
    for j in whole..<width {
        let e = expf(row[j] - top)
        row[j] = e
        sum += e
    }
    let inverse = 1 / sum
    for j in 0..<width { row[j] *= inverse }
}
