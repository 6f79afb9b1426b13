/// Geometry of one convolution axis. A tuple, not a struct, so that both builds of this
/// module have the same kernel signature.
public typealias ConvolutionAxis = (stride: Int, padding: Int, dilation: Int)

/// One channel of a depthwise convolution (`conv2d` with `groups == channels`):
/// `output[oy, ox] = sum over (ki, kj) of filter[ki, kj] * input[oy*sy - py + ki*dy, ox*sx - px + kj*dx]`,
/// plus `bias`, zero outside the input. input: [height, width], filter: [kh, kw], output: [outH, outW].
///
/// The interior columns, whose taps all fall inside the row, run without bounds checks; with
/// stride 1 they are computed four vectors and then one at a time, every tap accumulated in registers (four
/// independent sums, so the multiply-adds do not wait on each other), the last vector ending at
/// the last interior column; with stride 2 a vector at a time. The border columns check each tap.
public func depthwiseConv2d(input: UnsafePointer<Float>, height: Int, width: Int,
                            filter: UnsafePointer<Float>, kh: Int, kw: Int, y: ConvolutionAxis, x: ConvolutionAxis,
                            bias: Float, output: UnsafeMutablePointer<Float>, outH: Int, outW: Int) {
    let biases = Vector(repeating: bias)
    // Interior: ox*sx - px >= 0 and ox*sx - px + (kw-1)*dx <= width - 1.
    let first = min(outW, (x.padding + x.stride - 1) / x.stride)
    let span = width - 1 + x.padding - (kw - 1) * x.dilation
    let interior = first..<(span < 0 ? first : max(first, min(outW, span / x.stride + 1)))
    for oy in 0..<outH {
        let out = output + oy * outW
        let firstRow = oy * y.stride - y.padding
        // The taps whose row lies inside the input: firstRow + ki * dy in 0..<height.
        let lowest = firstRow >= 0 ? 0 : (-firstRow + y.dilation - 1) / y.dilation
        let highest = height > firstRow ? min(kh, (height - firstRow + y.dilation - 1) / y.dilation) : 0
        let taps = lowest..<max(lowest, highest)

        func border(_ ox: Int) -> Float {
            var sum = bias
            for ki in taps {
                let line = input + (firstRow + ki * y.dilation) * width
                for kj in 0..<kw {
                    let ix = ox * x.stride - x.padding + kj * x.dilation
                    if ix >= 0 && ix < width { sum += filter[ki * kw + kj] * line[ix] }
                }
            }
            return sum
        }

        var ox = 0
        while ox < interior.lowerBound {
            out[ox] = border(ox)
            ox += 1
        }
        if x.stride == 1 {
            let n = Vector.scalarCount
            while ox + 4 * n <= interior.upperBound {
                var s0 = biases, s1 = biases, s2 = biases, s3 = biases
                for ki in taps {
                    let line = input + (firstRow + ki * y.dilation) * width + ox - x.padding
                    for kj in 0..<kw {
                        let w = Vector(repeating: filter[ki * kw + kj]), tap = line + kj * x.dilation
                        s0 = muladd(tap.vector(at: 0), w, s0)
                        s1 = muladd(tap.vector(at: n), w, s1)
                        s2 = muladd(tap.vector(at: 2 * n), w, s2)
                        s3 = muladd(tap.vector(at: 3 * n), w, s3)
                    }
                }
                out.store(s0, at: ox)
                out.store(s1, at: ox + n)
                out.store(s2, at: ox + 2 * n)
                out.store(s3, at: ox + 3 * n)
                ox += 4 * n
            }
            func vector(at ox: Int) {
                var sum = biases
                for ki in taps {
                    let line = input + (firstRow + ki * y.dilation) * width + ox - x.padding
                    for kj in 0..<kw { sum = muladd(line.vector(at: kj * x.dilation), filter[ki * kw + kj], sum) }
                }
                out.store(sum, at: ox)
            }
            while ox + n <= interior.upperBound {
                vector(at: ox)
                ox += n
            }
            // The last few interior columns as the vector ending at the last one, overlapping
            // columns already written (with the same values): at a 256-wide row, the 14 left
            // over one at a time cost as much as the 240 before them.
            if ox < interior.upperBound, interior.count >= n {
                vector(at: interior.upperBound - n)
                ox = interior.upperBound
            }
        } else if x.stride == 2 {
            // Every other input column: the even lanes of two vectors. The second vector reads
            // one column past the last tap, so the vectors stop where that column is still in
            // the row.
            let n = Vector.scalarCount
            while ox + n <= interior.upperBound, 2 * (ox + n) - x.padding + (kw - 1) * x.dilation <= width {
                var sum = biases
                for ki in taps {
                    let line = input + (firstRow + ki * y.dilation) * width + 2 * ox - x.padding
                    for kj in 0..<kw {
                        let tap = line + kj * x.dilation
                        let even = Vector(lowHalf: tap.vector(at: 0).evenHalf, highHalf: tap.vector(at: n).evenHalf)
                        sum = muladd(even, filter[ki * kw + kj], sum)
                    }
                }
                out.store(sum, at: ox)
                ox += n
            }
        }
        while ox < interior.upperBound {
            var sum = bias
            for ki in taps {
                let line = input + (firstRow + ki * y.dilation) * width + ox * x.stride - x.padding
                for kj in 0..<kw { sum += filter[ki * kw + kj] * line[kj * x.dilation] }
            }
            out[ox] = sum
            ox += 1
        }
        while ox < outW {
            out[ox] = border(ox)
            ox += 1
        }
    }
}

/// A depthwise convolution on channels-last rows, for `rows` of the output:
/// `output[oy, ox, c] = bias[c] + sum over (ki, kj) of filter[ki, kj, c] * input[oy*sy - py + ki*dy, ox*sx - px + kj*dx, c]`,
/// zero outside the input. input: [height, width, channels], filter: [kh, kw, channels],
/// bias: [channels], output: [outH, outW, channels]. Each pixel's channels are a vector at
/// a time, contiguous in memory: no transpose to NCHW and back.
public func depthwiseConv2dChannelsLast(input: UnsafePointer<Float>, height: Int, width: Int, channels: Int,
                                        filter: UnsafePointer<Float>, kh: Int, kw: Int, y: ConvolutionAxis, x: ConvolutionAxis,
                                        bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                        outW: Int, rows: Range<Int>) {
    for oy in rows {
        let firstRow = oy * y.stride - y.padding
        for ox in 0..<outW {
            let firstColumn = ox * x.stride - x.padding
            let out = output + (oy * outW + ox) * channels
            var c = 0
            while c < channels {
                let lanes = min(Vector.scalarCount, channels - c)
                var sum = bias.vector(at: c, lanes: lanes)
                for ki in 0..<kh {
                    let iy = firstRow + ki * y.dilation
                    guard iy >= 0 && iy < height else { continue }
                    for kj in 0..<kw {
                        let ix = firstColumn + kj * x.dilation
                        guard ix >= 0 && ix < width else { continue }
                        let pixel = input + (iy * width + ix) * channels
                        sum = muladd(pixel.vector(at: c, lanes: lanes), (filter + (ki * kw + kj) * channels).vector(at: c, lanes: lanes), sum)
                    }
                }
                out.store(sum, at: c, lanes: lanes)
                c += Vector.scalarCount
            }
        }
    }
}
