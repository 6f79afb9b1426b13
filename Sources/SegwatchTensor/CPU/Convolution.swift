/// Geometry of a 2-D convolution, as `torch.nn.Conv2d` takes it.
public struct Conv2dOptions: Sendable, Equatable {
    public var stride: (y: Int, x: Int)
    public var padding: (y: Int, x: Int)
    public var dilation: (y: Int, x: Int)
    public var groups: Int
    /// Applied to the output, after the bias: `act(conv(x))` in one op. A depthwise kernel
    /// applies it to each channel while the channel is still in cache.
    public var activation: Activation?

    public init(stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1, activation: Activation? = nil) {
        self.init(stride: (stride, stride), padding: (padding, padding), dilation: (dilation, dilation), groups: groups,
                  activation: activation)
    }

    public init(stride: (y: Int, x: Int), padding: (y: Int, x: Int), dilation: (y: Int, x: Int) = (1, 1), groups: Int = 1,
                activation: Activation? = nil) {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.activation = activation
    }

    public static func == (l: Self, r: Self) -> Bool {
        l.stride == r.stride && l.padding == r.padding && l.dilation == r.dilation && l.groups == r.groups
            && l.activation == r.activation
    }
}

/// Output length of a convolution along one axis, as torch computes it.
private func outputSize(_ input: Int, kernel: Int, stride: Int, padding: Int, dilation: Int) -> Int {
    (input + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
}

/// `torch.nn.functional.conv2d` on NCHW input with an `[out, in/groups, kh, kw]` weight.
///
/// Depthwise convolutions run a direct kernel; 1x1 convolutions are one product per group;
/// the rest unfold the input (im2col) a block of output positions at a time, each block
/// multiplied while its unfolded columns are still in cache. A product starts from the bias
/// (BLAS's beta = 1), not from zeros with the bias added after.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, _ options: Conv2dOptions = .init()) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4, "conv2d: input \(x.shape), weight \(weight.shape)")
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (outChannels, groupChannels, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
    let groups = options.groups
    precondition(groups >= 1 && channels == groupChannels * groups && outChannels % groups == 0,
                 "conv2d: \(channels) input channels, weight \(weight.shape), groups \(groups)")
    let outH = outputSize(height, kernel: kh, stride: options.stride.y, padding: options.padding.y, dilation: options.dilation.y)
    let outW = outputSize(width, kernel: kw, stride: options.stride.x, padding: options.padding.x, dilation: options.dilation.x)
    precondition(outH > 0 && outW > 0, "conv2d: kernel \(kh)x\(kw) larger than padded input \(height)x\(width)")
    let x = x.contiguous(), weight = weight.contiguous()
    let result = Tensor(uninitialized: [batch, outChannels, outH, outW])

    if groups == channels && outChannels == channels {
        depthwise(x, weight, bias?.contiguous(), options, result)
    } else {
        if let bias { fillChannels(result, bias) }
        let outGroup = outChannels / groups
        let pointwise = kh == 1 && kw == 1 && options.stride == (1, 1) && options.padding == (0, 0)
        let rows = groupChannels * kh * kw, columns = outH * outW
        // Output positions per block: its unfolded columns (rows x block floats) fit in 256 KB
        // where rows allow, so the product reads them from L2 and the unfolded input never
        // exists whole (75 MB for MobileSAM's second patch-embedding convolution). At least 256
        // positions, so that the product's packing of the filters (once per call) stays small
        // beside its multiply-adds.
        let block = max(256, (65536 / max(rows, 1)) & ~15)
        for n in 0..<batch {
            for g in 0..<groups {
                let input = x.pointer + (n * channels + g * groupChannels) * height * width
                let filters = weight.pointer + g * outGroup * rows, output = result.pointer + (n * outChannels + g * outGroup) * columns
                if pointwise {
                    sgemm(m: outGroup, n: columns, k: rows, a: filters, lda: rows, b: input, ldb: columns,
                          beta: bias == nil ? 0 : 1, c: output, ldc: columns)
                    continue
                }
                parallelFor((columns + block - 1) / block) { range in
                    let unfolded = Tensor(uninitialized: [rows, block])
                    for index in range {
                        let first = index * block, count = min(block, columns - first)
                        im2col(input, groupChannels, height, width, kh, kw, options, outW, first..<first + count, unfolded.pointer)
                        sgemm(m: outGroup, n: count, k: rows, a: filters, lda: rows, b: unfolded.pointer, ldb: count,
                              beta: bias == nil ? 0 : 1, c: output + first, ldc: columns)
                    }
                }
            }
        }
        if let activation = options.activation { activateInPlace(result, activation) }
    }
    return result
}

/// Sets every element of channel `c` of an NCHW tensor to `bias[c]`.
private func fillChannels(_ result: Tensor, _ bias: Tensor) {
    let channels = result.shape[1], plane = result.shape[2] * result.shape[3]
    precondition(bias.count == channels, "bias of \(bias.count) for \(channels) channels")
    let bias = bias.contiguous().pointer, out = result.pointer
    parallelFor(result.shape[0] * channels) { range in
        for item in range { (out + item * plane).update(repeating: bias[item % channels], count: plane) }
    }
}

/// The unfolded input's columns `positions` (output positions `oy * outW + ox`): row
/// `(c * kh + ki) * kw + kj` holds input channel `c` at offset `(ki, kj)` from each position's
/// window, `positions.count` floats per row.
private func im2col(_ input: UnsafePointer<Float>, _ channels: Int, _ height: Int, _ width: Int,
                    _ kh: Int, _ kw: Int, _ o: Conv2dOptions, _ outW: Int, _ positions: Range<Int>,
                    _ columns: UnsafeMutablePointer<Float>) {
    for row in 0..<channels * kh * kw {
        let c = row / (kh * kw), ki = (row / kw) % kh, kj = row % kw
        let plane = input + c * height * width
        var out = columns + row * positions.count
        var position = positions.lowerBound
        while position < positions.upperBound {
            // One output row's run of positions at a time.
            let oy = position / outW, ox0 = position % outW, run = min(outW - ox0, positions.upperBound - position)
            let iy = oy * o.stride.y - o.padding.y + ki * o.dilation.y
            if iy < 0 || iy >= height {
                out.update(repeating: 0, count: run)
            } else {
                let line = plane + iy * width
                for ox in ox0..<ox0 + run {
                    let ix = ox * o.stride.x - o.padding.x + kj * o.dilation.x
                    out[ox - ox0] = ix >= 0 && ix < width ? line[ix] : 0
                }
            }
            out += run
            position += run
        }
    }
}

/// One filter per channel, each channel a task; the activation runs on the channel just written.
private func depthwise(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ o: Conv2dOptions, _ result: Tensor) {
    let (channels, height, width) = (x.shape[1], x.shape[2], x.shape[3])
    let (kh, kw) = (weight.shape[2], weight.shape[3])
    let (outH, outW) = (result.shape[2], result.shape[3])
    let input = x.pointer, filters = weight.pointer, output = result.pointer, biases = bias?.pointer
    if let bias { precondition(bias.count == channels, "bias of \(bias.count) for \(channels) channels") }
    let activation = o.activation.map(kernels.activation)
    let yAxis = (stride: o.stride.y, padding: o.padding.y, dilation: o.dilation.y)
    let xAxis = (stride: o.stride.x, padding: o.padding.x, dilation: o.dilation.x)
    parallelFor(result.shape[0] * channels) { range in
        for item in range {
            let plane = output + item * outH * outW
            kernels.depthwiseConv2d(input + item * height * width, height, width, filters + (item % channels) * kh * kw,
                                    kh, kw, yAxis, xAxis, biases?[item % channels] ?? 0, plane, outH, outW)
            activation?(plane, plane, outH * outW)
        }
    }
}

/// A depthwise `conv2d` on channels-last input: `x [batch, H, W, C]` with the usual
/// `[C, 1, kh, kw]` weight gives `[batch, outH, outW, C]`, equal to permuting to NCHW,
/// convolving and permuting back, without the two copies. `options.groups` must be C.
public func depthwiseConv2dChannelsLast(_ x: Tensor, weight: Tensor, bias: Tensor?, _ options: Conv2dOptions) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4, "depthwise conv2d (channels last): input \(x.shape), weight \(weight.shape)")
    let (batch, height, width, channels) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (kh, kw) = (weight.shape[2], weight.shape[3])
    precondition(options.groups == channels && weight.shape[0] == channels && weight.shape[1] == 1,
                 "depthwise conv2d (channels last): \(channels) channels, weight \(weight.shape), groups \(options.groups)")
    precondition(bias == nil || bias!.count == channels, "depthwise conv2d (channels last): bias \(bias!.shape) for \(channels) channels")
    let outH = outputSize(height, kernel: kh, stride: options.stride.y, padding: options.padding.y, dilation: options.dilation.y)
    let outW = outputSize(width, kernel: kw, stride: options.stride.x, padding: options.padding.x, dilation: options.dilation.x)
    precondition(outH > 0 && outW > 0, "depthwise conv2d (channels last): kernel \(kh)x\(kw) larger than padded input \(height)x\(width)")
    let x = x.contiguous()
    // [C, 1, kh, kw] -> [kh, kw, C]: each tap's channels contiguous, like the pixels'.
    let filter = weight.reshaped([channels, kh * kw]).permuted([1, 0]).contiguous()
    let bias = bias?.contiguous() ?? Tensor(zeros: [channels])
    let result = Tensor(uninitialized: [batch, outH, outW, channels])
    let yAxis = (stride: options.stride.y, padding: options.padding.y, dilation: options.dilation.y)
    let xAxis = (stride: options.stride.x, padding: options.padding.x, dilation: options.dilation.x)
    let activation = options.activation.map(kernels.activation)
    let input = x.pointer, output = result.pointer, taps = filter.pointer, biases = bias.pointer
    parallelFor(batch * outH) { range in
        for item in range {
            let n = item / outH, row = item % outH
            let out = output + n * outH * outW * channels
            kernels.depthwiseConv2dChannelsLast(input + n * height * width * channels, height, width, channels,
                                                taps, kh, kw, yAxis, xAxis, biases, out, outW, row..<row + 1)
            let written = out + row * outW * channels
            activation?(written, written, outW * channels)
        }
    }
    return result
}

/// `torch.nn.functional.conv_transpose2d` where kernel size equals stride and padding is 0
/// (SAM's 2x2, stride-2 upscaler): every input pixel writes its own k x k output block, so the
/// whole op is one product `[in] -> [out * k * k]` per image and a scatter.
public func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4 && weight.shape[0] == x.shape[1],
                 "conv_transpose2d: input \(x.shape), weight \(weight.shape)")
    let k = stride
    precondition(weight.shape[2] == k && weight.shape[3] == k,
                 "conv_transpose2d: only kernel == stride is supported, got kernel \(weight.shape[2])x\(weight.shape[3]) stride \(stride)")
    let (batch, inChannels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let outChannels = weight.shape[1], plane = height * width
    let x = x.contiguous(), weight = weight.contiguous()
    let blocks = Tensor(uninitialized: [outChannels * k * k, plane])
    let result = Tensor(uninitialized: [batch, outChannels, height * k, width * k])
    let bias = bias?.contiguous()
    for n in 0..<batch {
        sgemm(m: outChannels * k * k, n: plane, k: inChannels, a: weight.pointer, lda: outChannels * k * k,
              transposeA: true, b: x.pointer + n * inChannels * plane, ldb: plane, c: blocks.pointer, ldc: plane)
        let source = blocks.pointer, target = result.pointer + n * outChannels * plane * k * k
        parallelFor(outChannels) { range in
            for c in range {
                let b = bias?.pointer[c] ?? 0
                for ky in 0..<k {
                    for kx in 0..<k {
                        let tap = source + ((c * k + ky) * k + kx) * plane
                        for y in 0..<height {
                            let row = target + (c * height * k + y * k + ky) * width * k + kx
                            for xi in 0..<width { row[xi * k] = tap[y * width + xi] + b }
                        }
                    }
                }
            }
        }
    }
    return result
}

/// Folds an inference BatchNorm that follows a convolution into the convolution's weight and
/// bias: `bn(conv(x)) == conv'(x)`. Done once at load.
public func foldBatchNorm(weight: Tensor, bias: Tensor?, gamma: Tensor, beta: Tensor,
                          runningMean: Tensor, runningVar: Tensor, eps: Float) -> (weight: Tensor, bias: Tensor) {
    let channels = weight.shape[0], perChannel = weight.count / max(channels, 1)
    precondition([gamma, beta, runningMean, runningVar].allSatisfy { $0.count == channels },
                 "batch norm of \(gamma.count) channels after a conv of \(channels)")
    let w = weight.contiguous().toArray(), g = gamma.toArray(), b = beta.toArray()
    let mean = runningMean.toArray(), variance = runningVar.toArray(), convBias = bias?.toArray()
    var folded = w, foldedBias = [Float](repeating: 0, count: channels)
    for c in 0..<channels {
        let scale = g[c] / (variance[c] + eps).squareRoot()
        for i in 0..<perChannel { folded[c * perChannel + i] = w[c * perChannel + i] * scale }
        foldedBias[c] = ((convBias?[c] ?? 0) - mean[c]) * scale + b[c]
    }
    return (Tensor(shape: weight.shape, values: folded), Tensor(shape: [channels], values: foldedBias))
}
