/// Resampling filters of `torch.nn.functional.interpolate`.
public enum InterpolationMode: String, Sendable {
    case bilinear
    case bicubic
}

/// `torch.nn.functional.interpolate(x, size, mode, align_corners=False, antialias)` on NCHW
/// input. Separable: rows first, then columns, each output a fixed set of taps.
public func interpolate(_ x: Tensor, size: (h: Int, w: Int), mode: InterpolationMode, antialias: Bool = false) -> Tensor {
    precondition(x.rank == 4 && size.h > 0 && size.w > 0, "interpolate: input \(x.shape) to \(size)")
    let (planes, height, width) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    let x = x.contiguous()
    if (height, width) == size { return x.copied() }
    let resampling = PlaneInterpolation(input: (height, width), size: size, mode: mode, antialias: antialias)
    let result = Tensor(uninitialized: [x.shape[0], x.shape[1], size.h, size.w])
    let input = x.pointer, output = result.pointer
    parallelFor(planes) { range in
        var rows = [Float](repeating: 0, count: resampling.scratchCount)
        rows.withUnsafeMutableBufferPointer { rows in
            for plane in range {
                resampling.apply(input + plane * height * width, into: output + plane * size.h * size.w, rows: rows.baseAddress!)
            }
        }
    }
    return result
}

/// `interpolate` of one plane at a time, optionally only the top-left `kept` part of the
/// output: what a later crop keeps (SAM's masks, upscaled to 1024 and cropped to the image),
/// without computing the rest. Each output value is computed as `interpolate` computes it.
public struct PlaneInterpolation: Sendable {
    public let input: (h: Int, w: Int)
    /// The part of the interpolated plane that is computed: `[0, h) x [0, w)`.
    public let output: (h: Int, w: Int)
    private let horizontal: InterpolationTaps
    private let vertical: InterpolationTaps

    /// - Parameter kept: the top-left part of the `size` output to compute (default: all).
    public init(input: (h: Int, w: Int), size: (h: Int, w: Int), keeping kept: (h: Int, w: Int)? = nil, mode: InterpolationMode,
                antialias: Bool = false) {
        let kept = kept ?? size
        precondition(input.h > 0 && input.w > 0 && (1...size.h).contains(kept.h) && (1...size.w).contains(kept.w),
                     "interpolate: a \(input) plane to \(size), keeping \(kept)")
        self.input = input
        output = kept
        horizontal = antialias ? InterpolationTaps(antialiased: input.w, output: size.w, mode: mode, keeping: kept.w)
            : InterpolationTaps(input: input.w, output: size.w, mode: mode, keeping: kept.w)
        vertical = antialias ? InterpolationTaps(antialiased: input.h, output: size.h, mode: mode, keeping: kept.h)
            : InterpolationTaps(input: input.h, output: size.h, mode: mode, keeping: kept.h)
    }

    /// The floats `apply` needs as scratch.
    public var scratchCount: Int { input.h * output.w }

    /// Resamples `source` (`input`, row-major) into `target` (`output`, row-major); `rows`
    /// holds `scratchCount` floats of scratch.
    public func apply(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, rows: UnsafeMutablePointer<Float>) {
        for y in 0..<input.h {
            horizontal.apply(source + y * input.w, into: rows + y * output.w)
        }
        if vertical.count == 2 {
            // Bilinear: the general loop's sums in one pass over the line (`0 +` is the sum's start).
            for oy in 0..<output.h {
                let line = target + oy * output.w
                let (w0, w1) = (vertical.weights[2 * oy], vertical.weights[2 * oy + 1])
                let a = rows + vertical.indices[2 * oy] * output.w, b = rows + vertical.indices[2 * oy + 1] * output.w
                for ox in 0..<output.w { line[ox] = (0 + w0 * a[ox]) + w1 * b[ox] }
            }
            return
        }
        for oy in 0..<output.h {
            let line = target + oy * output.w
            line.update(repeating: 0, count: output.w)
            for t in 0..<vertical.count {
                let weight = vertical.weights[oy * vertical.count + t]
                let source = rows + vertical.indices[oy * vertical.count + t] * output.w
                for ox in 0..<output.w { line[ox] += weight * source[ox] }
            }
        }
    }
}

/// For each output position along one axis, the input indices it reads and their weights.
package struct InterpolationTaps {
    package let count: Int
    package var indices: [Int]
    package var weights: [Float]

    /// The taps of the first `kept` (default: all) of `output` positions.
    package init(input: Int, output: Int, mode: InterpolationMode, keeping kept: Int? = nil) {
        // torch's area_pixel_compute_scale and source index, align_corners=False.
        let scale = Float(input) / Float(output)
        switch mode {
        case .bilinear:
            count = 2
            indices = []
            weights = []
            for o in 0..<(kept ?? output) {
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
            for o in 0..<(kept ?? output) {
                let source = scale * (Float(o) + 0.5) - 0.5
                let floor = source.rounded(.down)
                let t = source - floor
                let base = Int(floor)
                for i in 0..<4 { indices.append(min(max(base - 1 + i, 0), input - 1)) }
                weights += cubicWeights(t)
            }
        }
    }

    /// The taps of `antialias=True` (torch's `_upsample_{bilinear,bicubic}2d_aa`): a filter
    /// stretched by the scale when shrinking (Keys' cubic with A = -0.5, or the triangle), over
    /// the inputs it covers, normalized to sum 1. The float and double steps are torch's
    /// (`HelperInterpBase::_compute_weights_aa`): its weights are computed in the tensor's type.
    /// Outputs cover a varying number of inputs; the shorter ones are padded with zero weights.
    init(antialiased input: Int, output: Int, mode: InterpolationMode, keeping kept: Int? = nil) {
        let size = mode == .bicubic ? 4 : 2
        let scale = Float(input) / Float(output)
        let support = Float(scale >= 1 ? Double(size) * 0.5 * Double(scale) : Double(size) * 0.5)
        let invscale = scale >= 1 ? Float(1 / Double(scale)) : 1
        count = Int(Double(support).rounded(.up)) * 2 + 1
        indices = []
        weights = []
        func filter(_ x: Float) -> Float {
            let x = abs(x)
            if mode == .bilinear { return x < 1 ? 1 - x : 0 }
            let a: Float = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
            return 0
        }
        for o in 0..<(kept ?? output) {
            let center = Float(Double(scale) * (Double(o) + 0.5))
            let first = max(Int(Double(center - support) + 0.5), 0)
            let taps = min(max(min(Int(Double(center + support) + 0.5), input) - first, 0), count)
            var row = (0..<taps).map { j in filter(Float((Double(Float(j + first) - center) + 0.5) * Double(invscale))) }
            let total = row.reduce(0, +)
            if total != 0 { row = row.map { $0 / total } }
            indices += (0..<count).map { min(first + min($0, max(taps - 1, 0)), input - 1) }
            weights += row + [Float](repeating: 0, count: count - taps)
        }
    }

    /// Resamples one input row into `target`.
    func apply(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>) {
        if count == 2 {
            for o in 0..<(indices.count / 2) {
                target[o] = (0 + weights[2 * o] * source[indices[2 * o]]) + weights[2 * o + 1] * source[indices[2 * o + 1]]
            }
            return
        }
        for o in 0..<(indices.count / count) {
            var sum: Float = 0
            for t in 0..<count { sum += weights[o * count + t] * source[indices[o * count + t]] }
            target[o] = sum
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
