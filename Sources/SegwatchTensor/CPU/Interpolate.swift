/// Resampling filters of `torch.nn.functional.interpolate`.
public enum InterpolationMode: String, Sendable {
    case bilinear
    case bicubic
}

/// `torch.nn.functional.interpolate(x, size, mode, align_corners=False)` without antialiasing,
/// on NCHW input. Separable: rows first, then columns, each output a fixed set of taps.
public func interpolate(_ x: Tensor, size: (h: Int, w: Int), mode: InterpolationMode) -> Tensor {
    precondition(x.rank == 4 && size.h > 0 && size.w > 0, "interpolate: input \(x.shape) to \(size)")
    let (planes, height, width) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    let x = x.contiguous()
    if (height, width) == size { return x.copied() }
    let horizontal = InterpolationTaps(input: width, output: size.w, mode: mode)
    let vertical = InterpolationTaps(input: height, output: size.h, mode: mode)
    let result = Tensor(uninitialized: [x.shape[0], x.shape[1], size.h, size.w])
    let input = x.pointer, output = result.pointer
    parallelFor(planes) { range in
        var rows = [Float](repeating: 0, count: height * size.w)
        for plane in range {
            let source = input + plane * height * width
            for y in 0..<height {
                horizontal.apply(source + y * width, into: &rows, at: y * size.w)
            }
            let target = output + plane * size.h * size.w
            rows.withUnsafeBufferPointer { rows in
                for oy in 0..<size.h {
                    let line = target + oy * size.w
                    line.update(repeating: 0, count: size.w)
                    for t in 0..<vertical.count {
                        let weight = vertical.weights[oy * vertical.count + t]
                        let source = rows.baseAddress! + vertical.indices[oy * vertical.count + t] * size.w
                        for ox in 0..<size.w { line[ox] += weight * source[ox] }
                    }
                }
            }
        }
    }
    return result
}

/// For each output position along one axis, the input indices it reads and their weights.
struct InterpolationTaps {
    let count: Int
    var indices: [Int]
    var weights: [Float]

    init(input: Int, output: Int, mode: InterpolationMode) {
        // torch's area_pixel_compute_scale and source index, align_corners=False.
        let scale = Float(input) / Float(output)
        switch mode {
        case .bilinear:
            count = 2
            indices = []
            weights = []
            for o in 0..<output {
                let source = max(scale * (Float(o) + 0.5) - 0.5, 0)
                let i0 = min(Int(source), input - 1), i1 = min(i0 + 1, input - 1)
                let lambda = source - Float(i0)
                indices += [i0, i1]
                weights += [1 - lambda, lambda]
            }
        case .bicubic:
            count = 4
            indices = []
            weights = []
            for o in 0..<output {
                let source = scale * (Float(o) + 0.5) - 0.5
                let floor = source.rounded(.down)
                let t = source - floor
                let base = Int(floor)
                for i in 0..<4 { indices.append(min(max(base - 1 + i, 0), input - 1)) }
                weights += cubicWeights(t)
            }
        }
    }

    /// Resamples one input row into `target[offset...]`.
    func apply(_ source: UnsafePointer<Float>, into target: inout [Float], at offset: Int) {
        for o in 0..<(indices.count / count) {
            var sum: Float = 0
            for t in 0..<count { sum += weights[o * count + t] * source[indices[o * count + t]] }
            target[offset + o] = sum
        }
    }
}

/// torch's cubic convolution coefficients (Keys, A = -0.75) for fractional offset `t`.
private func cubicWeights(_ t: Float) -> [Float] {
    let a: Float = -0.75
    func near(_ x: Float) -> Float { ((a + 2) * x - (a + 3)) * x * x + 1 }
    func far(_ x: Float) -> Float { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]
}
