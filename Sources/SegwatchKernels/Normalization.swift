/// `torch.nn.functional.layer_norm` of one row: `target[i] = (source[i] - mean) / sqrt(var + eps)
/// * gamma[i] + beta[i]` over `width` floats, with the biased variance. `target` may be `source`.
public func layerNormRow(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, width: Int,
                         gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float) {
    let whole = width & ~(Vector.scalarCount - 1)
    var sums = Vector.zero
    var i = 0
    while i < whole {
        sums += source.vector(at: i)
        i += Vector.scalarCount
    }
    var sum = sums.sum()
    for j in whole..<width { sum += source[j] }
    let mean = sum / Float(width)
    // Deviations from the mean in a second pass: one pass of x^2 - mean^2 loses the variance of
    // rows whose mean is large.
    var squares = Vector.zero
    i = 0
    while i < whole {
        let d = source.vector(at: i) - mean
        squares = muladd(d, d, squares)
        i += Vector.scalarCount
    }
    var square = squares.sum()
    for j in whole..<width { square += (source[j] - mean) * (source[j] - mean) }
    let inverse = 1 / (square / Float(width) + eps).squareRoot()
    i = 0
    while i < whole {
        let normalized = (source.vector(at: i) - mean) * inverse
        target.store(muladd(normalized, gamma.vector(at: i), beta.vector(at: i)), at: i)
        i += Vector.scalarCount
    }
    for j in whole..<width { target[j] = (source[j] - mean) * inverse * gamma[j] + beta[j] }
}

/// SAM's `LayerNorm2d` on `count` pixels of an NCHW image: normalizes each pixel over its
/// `channels` values, which lie `stride` floats apart (`input[c * stride + i]`). `mean` and
/// `inverse` are scratch rows of at least `count` floats.
public func layerNormPixels(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                            channels: Int, stride: Int, count: Int,
                            gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
                            mean: UnsafeMutablePointer<Float>, inverse: UnsafeMutablePointer<Float>) {
    let scale = 1 / Float(channels)
    var i = 0
    while i < count {
        let lanes = min(Vector.scalarCount, count - i)
        var sum = Vector.zero
        for c in 0..<channels { sum += input.vector(at: c * stride + i, lanes: lanes) }
        let m = sum * scale
        var squares = Vector.zero
        for c in 0..<channels {
            let d = input.vector(at: c * stride + i, lanes: lanes) - m
            squares = muladd(d, d, squares)
        }
        mean.store(m, at: i, lanes: lanes)
        inverse.store(1 / (squares * scale + eps).squareRoot(), at: i, lanes: lanes)
        i += Vector.scalarCount
    }
    for c in 0..<channels {
        let row = input + c * stride, target = output + c * stride
        let g = gamma[c], b = beta[c]
        for j in 0..<count { target[j] = (row[j] - mean[j]) * inverse[j] * g + b }
    }
}
