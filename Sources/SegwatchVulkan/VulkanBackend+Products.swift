import SegwatchTensor

/// The gemm kernel's tile: 64 x 64 outputs per workgroup of 256 threads, 16 deep.
private let gemmTile: [UInt32] = [64, 64, 16, 256]

/// One batched product for the gemm kernel: `C[z] = A[z] B[z]` over `outer x inner` batch
/// items, every operand a strided view (element strides).
struct Product {
    var m: Int, n: Int, k: Int
    var outer = 1, inner = 1
    var a: VulkanTensor, aOuter = 0, aInner = 0, aRow: Int, aCol: Int
    var b: VulkanTensor, bOuter = 0, bInner = 0, bRow: Int, bCol: Int
    var c: VulkanTensor, cOuter = 0, cInner = 0, cRow: Int
    var bias: VulkanTensor? = nil, biasPerRow = false, biasInner = 0
    var activation: Activation? = nil
    var residual: VulkanTensor? = nil
}

extension VulkanBackend {
    func gemm(_ p: Product) {
        // K = 0 runs too: the sums stay 0 and the epilogue adds bias and residual, as on the CPU.
        guard p.m > 0, p.n > 0, p.outer * p.inner > 0 else { return }
        let limit = Int(context.device.info.maxWorkgroupCount[2])
        if p.outer * p.inner > limit {
            // More products than one dispatch's third dimension holds: the outer batch in parts,
            // each a view that starts at its first product (a single level taken as the outer one).
            if p.outer == 1 && p.biasInner == 0 {
                var swapped = p
                (swapped.outer, swapped.inner) = (p.inner, 1)
                (swapped.aOuter, swapped.bOuter, swapped.cOuter) = (p.aInner, p.bInner, p.cInner)
                (swapped.aInner, swapped.bInner, swapped.cInner) = (0, 0, 0)
                return gemm(swapped)
            }
            precondition(p.inner <= limit, "gemm: \(p.inner) products in the inner batch, over the device's \(limit)")
            let step = limit / p.inner
            for first in stride(from: 0, to: p.outer, by: step) {
                var part = p
                part.outer = min(step, p.outer - first)
                part.a = p.a.shifted(by: first * p.aOuter)
                part.b = p.b.shifted(by: first * p.bOuter)
                part.c = p.c.shifted(by: first * p.cOuter)
                part.residual = p.residual?.shifted(by: first * p.cOuter)
                gemm(part)
            }
            return
        }
        let flags = (p.bias == nil ? 0 : 1) | (p.biasPerRow ? 2 : 0) | (p.residual == nil ? 0 : 4) | (vulkanCode(p.activation) << 8)
        precondition(!p.a.half && !p.c.half, "gemm: float16 only as B")
        run(p.b.half ? .gemmhalf : .gemm, gemmTile, groups: ((p.n + 63) / 64, (p.m + 63) / 64, p.outer * p.inner),
            reads: [p.a, p.b, p.bias, p.residual], writes: [p.c]) { push in
            push.address(p.a)
            push.address(p.b)
            push.address(p.c)
            push.address(p.bias)
            push.address(p.residual)
            push.uint(p.m, p.n, p.k, p.inner)
            push.int(p.aOuter, p.aInner, p.aRow, p.aCol)
            push.int(p.bOuter, p.bInner, p.bRow, p.bCol)
            push.int(p.cOuter, p.cInner, p.cRow)
            push.int(p.biasInner)
            push.uint(flags)
        }
    }

    public func matmul(_ a: VulkanTensor, _ b: VulkanTensor) -> VulkanTensor {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank >= 2, got \(a.shape) and \(b.shape)")
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
        precondition(b.shape[b.rank - 2] == k, "matmul inner dimensions differ: \(a.shape) x \(b.shape)")
        let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
        let batch = broadcastShape(aBatch, bBatch, "matmul of \(a.shape) and \(b.shape)")
        let result = context.allocate(batch + [m, n])
        let (aRow, aCol) = (a.strides[a.rank - 2], a.strides[a.rank - 1])
        let (bRow, bCol) = (b.strides[b.rank - 2], b.strides[b.rank - 1])

        // A batch of A against one B, A's rows evenly spaced: one taller product.
        if b.rank == 2, let rows = collapse(Array(a.shape.dropLast()), [Array(a.strides.dropLast())], rank: 1) {
            gemm(Product(m: rows.shape[0], n: n, k: k, a: a, aRow: rows.strides[0][0], aCol: aCol, b: b, bRow: bRow, bCol: bCol,
                         c: result, cRow: n))
            return result
        }
        let aView = broadcast(a, to: batch + a.shape.suffix(2)), bView = broadcast(b, to: batch + b.shape.suffix(2))
        let cStrides = Array(result.strides.dropLast(2))
        guard let levels = collapse(batch, [Array(aView.strides.dropLast(2)), Array(bView.strides.dropLast(2)), cStrides], rank: 2) else {
            // Batch dimensions that do not merge into two levels: lay the operands out whole.
            return matmul(contiguous(aView), contiguous(bView))
        }
        gemm(Product(m: m, n: n, k: k, outer: levels.shape[0], inner: levels.shape[1],
                     a: a, aOuter: levels.strides[0][0], aInner: levels.strides[0][1], aRow: aRow, aCol: aCol,
                     b: b, bOuter: levels.strides[1][0], bInner: levels.strides[1][1], bRow: bRow, bCol: bCol,
                     c: result, cOuter: levels.strides[2][0], cInner: levels.strides[2][1], cRow: n))
        return result
    }

    public func linear(_ x: VulkanTensor, weight: VulkanTensor, bias: VulkanTensor?, adding residual: VulkanTensor?) -> VulkanTensor {
        linear(x, weight: weight, bias: bias, activation: nil, residual: residual)
    }

    public func linear(_ x: VulkanTensor, weight: VulkanTensor, bias: VulkanTensor?, activation: Activation) -> VulkanTensor {
        linear(x, weight: weight, bias: bias, activation: activation, residual: nil)
    }

    private func linear(_ x: VulkanTensor, weight: VulkanTensor, bias: VulkanTensor?, activation: Activation?,
                        residual: VulkanTensor?) -> VulkanTensor {
        precondition(weight.rank == 2 && x.shape.last == weight.shape[1],
                     "linear: input \(x.shape) against weight \(weight.shape)")
        let (outputs, inputs) = (weight.shape[0], weight.shape[1])
        let shape = Array(x.shape.dropLast()) + [outputs]
        if let bias { precondition(bias.count == outputs, "linear: bias \(bias.shape) for \(outputs) outputs") }
        if let residual { precondition(residual.shape == shape, "linear: residual \(residual.shape) for output \(shape)") }
        let rows = shape.dropLast().reduce(1, *)
        // The rows of x evenly spaced (any leading dimensions merge into one), else laid out anew.
        let evenRows = x.strides.last == 1 ? collapse(Array(x.shape.dropLast()), [Array(x.strides.dropLast())], rank: 1) : nil
        let x = evenRows == nil ? contiguous(x) : x
        let rowStride = evenRows?.strides[0][0] ?? inputs
        let result = context.allocate(shape)
        // B[k][n] = weight[n][k]: a weight laid out by linearWeight reads along its rows.
        gemm(Product(m: rows, n: outputs, k: inputs, a: x, aRow: rowStride, aCol: 1,
                     b: weight, bRow: weight.strides[1], bCol: weight.strides[0], c: result, cRow: outputs,
                     bias: bias.map(contiguous), activation: activation, residual: residual.map(contiguous)))
        return result
    }

    /// `[out, in]` stored as `[in, out]`: the gemm kernel's B tile then reads whole rows. With
    /// `float16Weights`, stored as float16 (rounded to nearest even).
    public func linearWeight(_ weight: VulkanTensor) -> VulkanTensor {
        precondition(weight.rank == 2, "linear weight \(weight.shape)")
        let transposed = contiguous(weight.permuted([1, 0]))
        guard context.float16Weights else { return transposed.permuted([1, 0]) }
        let half = context.allocateHalf(transposed.shape)
        if transposed.count > 0 {
            run(.tohalf, groups: elementGroups(transposed.count), reads: [transposed], writes: [half]) { p in
                p.address(transposed)
                p.address(half)
                p.uint(transposed.count)
            }
        }
        return half.permuted([1, 0])
    }

    public func conv2d(_ x: VulkanTensor, weight: VulkanTensor, bias: VulkanTensor?, _ options: Conv2dOptions) -> VulkanTensor {
        precondition(x.rank == 4 && weight.rank == 4 && x.shape[1] == weight.shape[1] * options.groups
                     && weight.shape[0] % options.groups == 0,
                     "conv2d: input \(x.shape), weight \(weight.shape), groups \(options.groups)")
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (outChannels, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        let (outH, outW) = convolutionOutput(height: height, width: width, kh: kh, kw: kw, options)
        let x = contiguous(x), weight = contiguous(weight)
        if options.groups == channels && outChannels == channels {
            return depthwise(x, weight: weight, bias: bias, options, channelsLast: false)
        }
        let groups = options.groups
        let (groupIn, groupOut) = (channels / groups, outChannels / groups)
        let positions = outH * outW, depth = groupIn * kh * kw
        let pointwise = kh == 1 && kw == 1 && options.stride == (1, 1) && options.padding == (0, 0)
        let columns = pointwise ? x : context.allocate([batch, channels * kh * kw, positions])
        if !pointwise {
            run(.im2col, groups: elementGroups(columns.count), reads: [x], writes: [columns]) { p in
                p.address(x)
                p.address(columns)
                p.uint(batch, channels, height, width, kh, kw)
                p.int(options.stride.y, options.stride.x, options.padding.y, options.padding.x, options.dilation.y, options.dilation.x)
                p.uint(outH, outW)
            }
        }
        let result = context.allocate([batch, outChannels, outH, outW])
        // Per image n and group g: out[n, g] [groupOut, positions] = weight[g] [groupOut, depth] x columns[n, g] [depth, positions].
        gemm(Product(m: groupOut, n: positions, k: depth, outer: batch, inner: groups,
                     a: weight, aOuter: 0, aInner: groupOut * depth, aRow: depth, aCol: 1,
                     b: columns, bOuter: channels * kh * kw * positions, bInner: depth * positions, bRow: positions, bCol: 1,
                     c: result, cOuter: outChannels * positions, cInner: groupOut * positions, cRow: positions,
                     bias: bias.map(contiguous), biasPerRow: true, biasInner: groupOut, activation: options.activation))
        return result
    }

    public func depthwiseConv2dChannelsLast(_ x: VulkanTensor, weight: VulkanTensor, bias: VulkanTensor?,
                                            _ options: Conv2dOptions) -> VulkanTensor {
        depthwise(contiguous(x), weight: contiguous(weight), bias: bias, options, channelsLast: true)
    }

    private func depthwise(_ x: VulkanTensor, weight: VulkanTensor, bias: VulkanTensor?, _ options: Conv2dOptions,
                           channelsLast: Bool) -> VulkanTensor {
        let (batch, channels, height, width) = channelsLast ? (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
            : (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(x.rank == 4 && weight.shape[0] == channels && weight.count == channels * weight.shape[2] * weight.shape[3],
                     "depthwise conv2d: input \(x.shape), weight \(weight.shape)")
        let (kh, kw) = (weight.shape[2], weight.shape[3])
        let (outH, outW) = convolutionOutput(height: height, width: width, kh: kh, kw: kw, options)
        let result = context.allocate(channelsLast ? [batch, outH, outW, channels] : [batch, channels, outH, outW])
        let bias = bias.map(contiguous)
        let flags = (bias == nil ? 0 : 1) | (channelsLast ? 2 : 0) | (vulkanCode(options.activation) << 8)
        run(.depthwise, groups: elementGroups(result.count), reads: [x, weight, bias], writes: [result]) { p in
            p.address(x)
            p.address(weight)
            p.address(bias)
            p.address(result)
            p.uint(batch, channels, height, width, kh, kw)
            p.int(options.stride.y, options.stride.x, options.padding.y, options.padding.x, options.dilation.y, options.dilation.x)
            p.uint(outH, outW, flags)
        }
        return result
    }

    public func convTranspose2d(_ x: VulkanTensor, weight: VulkanTensor, bias: VulkanTensor?, stride: Int) -> VulkanTensor {
        precondition(x.rank == 4 && weight.rank == 4 && weight.shape[0] == x.shape[1],
                     "conv_transpose2d: input \(x.shape), weight \(weight.shape)")
        precondition(weight.shape[2] == stride && weight.shape[3] == stride,
                     "conv_transpose2d: only kernel == stride is supported, got kernel \(weight.shape[2])x\(weight.shape[3]) stride \(stride)")
        let (batch, inChannels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let outChannels = weight.shape[1]
        let x = contiguous(x), weight = contiguous(weight), bias = bias.map(contiguous)
        let result = context.allocate([batch, outChannels, height * stride, width * stride])
        run(.convtranspose, groups: elementGroups(result.count), reads: [x, weight, bias], writes: [result]) { p in
            p.address(x)
            p.address(weight)
            p.address(bias)
            p.address(result)
            p.uint(batch, inChannels, outChannels, height, width, stride, bias == nil ? 0 : 1)
        }
        return result
    }

    private func convolutionOutput(height: Int, width: Int, kh: Int, kw: Int, _ o: Conv2dOptions) -> (Int, Int) {
        let outH = (height + 2 * o.padding.y - o.dilation.y * (kh - 1) - 1) / o.stride.y + 1
        let outW = (width + 2 * o.padding.x - o.dilation.x * (kw - 1) - 1) / o.stride.x + 1
        precondition(outH > 0 && outW > 0, "conv2d: a \(height)x\(width) input is smaller than the \(kh)x\(kw) kernel")
        return (outH, outW)
    }
}

/// numpy's broadcast of two shapes, aligned at the right.
func broadcastShape(_ a: [Int], _ b: [Int], _ what: @autoclosure () -> String) -> [Int] {
    let rank = max(a.count, b.count)
    let a = [Int](repeating: 1, count: rank - a.count) + a, b = [Int](repeating: 1, count: rank - b.count) + b
    return zip(a, b).map { x, y in
        precondition(x == y || x == 1 || y == 1, "\(what()): shapes do not broadcast")
        return x == 1 ? y : x  // 1 against 0 is 0
    }
}

/// `x` as a view of `shape` (aligned at the right, stride 0 where broadcast).
func broadcast(_ x: VulkanTensor, to shape: [Int]) -> VulkanTensor {
    let missing = shape.count - x.rank
    let own = [Int](repeating: 1, count: missing) + x.shape, strides = [Int](repeating: 0, count: missing) + x.strides
    return VulkanTensor(shape: shape, strides: zip(own, shape).enumerated().map { $1.0 == $1.1 ? strides[$0] : 0 },
                        offset: x.offset, buffer: x.buffer)
}

/// The kernels' activation codes (common.glsl).
func vulkanCode(_ activation: Activation?) -> Int {
    switch activation {
    case nil: 0
    case .gelu: 1
    case .geluTanh: 2
    case .quickGelu: 3
    case .relu: 4
    case .sigmoid: 5
    }
}
