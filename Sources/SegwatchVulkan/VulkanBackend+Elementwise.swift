import SegwatchTensor

extension VulkanBackend {
    // MARK: Norms, activations, attention

    public func layerNorm(_ x: VulkanTensor, weight: VulkanTensor, bias: VulkanTensor, eps: Float) -> VulkanTensor {
        normalizeRows(x, residual: nil, weight: weight, bias: bias, eps: eps)
    }

    public func layerNorm(_ x: VulkanTensor, adding residual: VulkanTensor, weight: VulkanTensor, bias: VulkanTensor, eps: Float) -> VulkanTensor {
        normalizeRows(x, residual: residual, weight: weight, bias: bias, eps: eps)
    }

    private func normalizeRows(_ x: VulkanTensor, residual: VulkanTensor?, weight: VulkanTensor, bias: VulkanTensor, eps: Float) -> VulkanTensor {
        let channels = x.shape.last ?? 1
        precondition(weight.count == channels && bias.count == channels, "layer norm: input \(x.shape), weight \(weight.shape), bias \(bias.shape)")
        let shape = residual?.shape ?? x.shape
        if let residual {
            // The sum never stored whole where x is the residual's shape, or batch 1 of it; otherwise
            // (other broadcasts) the sum first, as the CPU backend does.
            let shared = x.rank == residual.rank && x.rank > 1 && x.shape[0] == 1 && Array(x.shape.dropFirst()) == Array(residual.shape.dropFirst())
            guard x.shape == residual.shape || shared else {
                return normalizeRows(binary(x, .add, residual), residual: nil, weight: weight, bias: bias, eps: eps)
            }
        }
        let x = contiguous(x), residual = residual.map(contiguous)
        let weight = contiguous(weight), bias = contiguous(bias)
        let result = context.allocate(shape)
        let rows = result.count / max(channels, 1)
        guard rows > 0, channels > 0 else { return result }
        run(.layernorm, groups: rowGroups(rows), reads: [x, residual, weight, bias], writes: [result]) { p in
            p.address(x)
            p.address(residual)
            p.address(weight)
            p.address(bias)
            p.address(result)
            p.uint(rows, x.count / channels, channels)
            p.float(eps)
            p.uint(residual == nil ? 0 : 1)
        }
        return result
    }

    public func layerNorm2d(_ x: VulkanTensor, weight: VulkanTensor, bias: VulkanTensor, eps: Float) -> VulkanTensor {
        precondition(x.rank == 4 && weight.count == x.shape[1] && bias.count == x.shape[1],
                     "layer norm 2d: input \(x.shape), weight \(weight.shape), bias \(bias.shape)")
        let x = contiguous(x), weight = contiguous(weight), bias = contiguous(bias)
        let result = context.allocate(x.shape)
        let (batch, channels, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        guard batch * plane > 0 else { return result }
        run(.layernorm2d, groups: elementGroups(batch * plane), reads: [x, weight, bias], writes: [result]) { p in
            p.address(x)
            p.address(weight)
            p.address(bias)
            p.address(result)
            p.uint(batch, channels, plane)
            p.float(eps)
        }
        return result
    }

    public func activate(_ x: VulkanTensor, _ activation: Activation) -> VulkanTensor {
        unary(x, activation: activation, scale: 1, shift: 0)
    }

    public func affine(_ x: VulkanTensor, scale: Float, shift: Float) -> VulkanTensor {
        unary(x, activation: nil, scale: scale, shift: shift)
    }

    private func unary(_ x: VulkanTensor, activation: Activation?, scale: Float, shift: Float) -> VulkanTensor {
        let x = contiguous(x)
        let result = context.allocate(x.shape)
        guard x.count > 0 else { return result }
        run(.unary, groups: elementGroups(x.count), reads: [x], writes: [result]) { p in
            p.address(x)
            p.address(result)
            p.uint(x.count, vulkanCode(activation))
            p.float(scale, shift)
        }
        return result
    }

    public func softmax(_ x: VulkanTensor) -> VulkanTensor {
        let x = contiguous(x)
        let result = context.allocate(x.shape)
        let width = x.shape.last ?? 1
        guard x.count > 0 else { return result }
        let rows = x.count / width
        run(.softmax, groups: rowGroups(rows), reads: [x], writes: [result]) { p in
            p.address(x)
            p.address(result)
            p.uint(rows, width)
        }
        return result
    }

    public func attention(q: VulkanTensor, k: VulkanTensor, v: VulkanTensor, _ options: AttentionOptions<VulkanTensor>) -> VulkanTensor {
        let (batch, heads, queries, depth, keys, valueDepth) = attentionShape(q: q.shape, k: k.shape, v: v.shape, options.map(\.shape))
        let deepest = max(depth, valueDepth)
        precondition(deepest <= 128, "attention: head depth \(deepest) over the 128 the Vulkan kernel holds")
        let q = q.strides[3] == 1 ? q : contiguous(q)
        let k = k.strides[3] == 1 ? k : contiguous(k)
        let v = v.strides[3] == 1 ? v : contiguous(v)
        let bias = options.bias.map(contiguous)
        let relative = options.relativePosition
        let height = relative.map { contiguous($0.height) }, width = relative.map { contiguous($0.width) }
        let result = context.allocate([batch, queries, heads * valueDepth])
        guard result.count > 0, keys > 0 else { return result }
        let limit = Int(context.device.info.maxWorkgroupCount[1])
        if batch * heads > limit {
            // More heads than one dispatch's second dimension holds: the batch in parts.
            precondition(heads <= limit, "attention: \(heads) heads, over the device's \(limit) workgroups")
            let step = limit / heads
            for first in stride(from: 0, to: batch, by: step) {
                let part = first..<min(first + step, batch)
                let terms = relative.map {
                    RelativePositionBias(height: $0.height.sliced(0, part), width: $0.width.sliced(0, part), keyGrid: $0.keyGrid)
                }
                let partBias = bias.map { $0.rank == 4 ? $0.sliced(0, part) : $0 }
                let out = attention(q: q.sliced(0, part), k: k.sliced(0, part), v: v.sliced(0, part),
                                    AttentionOptions(scale: options.scale, causal: options.causal, bias: partBias, relativePosition: terms))
                copy(out, into: result.sliced(0, part))
            }
            return result
        }
        let flags = (options.causal ? 1 : 0) | (bias == nil ? 0 : 2) | (bias?.rank == 4 ? 4 : 0) | (relative == nil ? 0 : 8)
        let dmax: UInt32 = deepest <= 32 ? 32 : deepest <= 64 ? 64 : 128
        run(.attention, [dmax, 16], groups: ((queries + 63) / 64, batch * heads, 1),
            reads: [q, k, v, bias, height, width], writes: [result]) { p in
            p.address(q)
            p.address(k)
            p.address(v)
            p.address(result)
            p.address(bias)
            p.address(height)
            p.address(width)
            p.uint(heads, queries, keys, depth, valueDepth)
            p.int(q.strides[0], q.strides[1], q.strides[2])
            p.int(k.strides[0], k.strides[1], k.strides[2])
            p.int(v.strides[0], v.strides[1], v.strides[2])
            p.float(options.scale)
            p.uint(flags, relative?.keyGrid.h ?? 1, relative?.keyGrid.w ?? 1)
        }
        return result
    }

    public func relativePositionBias(q: VulkanTensor, tableH: VulkanTensor, tableW: VulkanTensor,
                                     queryGrid: (h: Int, w: Int), keyGrid: (h: Int, w: Int)) -> RelativePositionBias<VulkanTensor> {
        let (batch, heads, queries, channels) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        precondition(queries == queryGrid.h * queryGrid.w, "relative position: \(queries) queries on a \(queryGrid) grid")
        // SAM's get_rel_pos tables, [q, k, C]: a gather (and a resize when the stored table does not fit),
        // made once per table and grid on the host.
        let rh = relativeTable(tableH, query: queryGrid.h, key: keyGrid.h)
        let rw = relativeTable(tableW, query: queryGrid.w, key: keyGrid.w)
        let q = q.strides[3] == 1 && q.strides[0] == heads * q.strides[1] ? q : contiguous(q)
        let (item, row) = (q.strides[1], q.strides[2])
        let height = context.allocate([batch, heads, queries, keyGrid.h])
        let width = context.allocate([batch, heads, queries, keyGrid.w])
        // rel_h[item, y, x, :] = q[item, y, x] . Rh[y]: per item and query row y, [qw, C] x [C, kh].
        gemm(Product(m: queryGrid.w, n: keyGrid.h, k: channels, outer: batch * heads, inner: queryGrid.h,
                     a: q, aOuter: item, aInner: queryGrid.w * row, aRow: row, aCol: 1,
                     b: rh, bOuter: 0, bInner: keyGrid.h * channels, bRow: 1, bCol: channels,
                     c: height, cOuter: queries * keyGrid.h, cInner: queryGrid.w * keyGrid.h, cRow: keyGrid.h))
        // rel_w[item, y, x, :] = q[item, y, x] . Rw[x]: per item and query column x, [qh, C] x [C, kw].
        gemm(Product(m: queryGrid.h, n: keyGrid.w, k: channels, outer: batch * heads, inner: queryGrid.w,
                     a: q, aOuter: item, aInner: row, aRow: queryGrid.w * row, aCol: 1,
                     b: rw, bOuter: 0, bInner: keyGrid.w * channels, bRow: 1, bCol: channels,
                     c: width, cOuter: queries * keyGrid.w, cInner: keyGrid.w, cRow: queryGrid.w * keyGrid.w))
        return RelativePositionBias(height: height, width: width, keyGrid: keyGrid)
    }

    private func relativeTable(_ table: VulkanTensor, query: Int, key: Int) -> VulkanTensor {
        // A buffer's serial number is never reused, unlike its address: a table freed with its
        // model cannot be mistaken for a later one.
        let name = "relative \(table.buffer.serial) \(table.offset) \(table.shape) \(query) \(key)"
        return context.cachedValue(name) {
            upload(relativePositions(querySize: query, keySize: key, table: download(table)))
        }
    }

    // MARK: Resampling and elementwise

    public func interpolate(_ x: VulkanTensor, size: (h: Int, w: Int), mode: InterpolationMode) -> VulkanTensor {
        precondition(x.rank == 4 && size.h > 0 && size.w > 0, "interpolate: input \(x.shape) to \(size)")
        let (planes, height, width) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let x = contiguous(x)
        if (height, width) == size { return x }
        let rows = context.allocate([planes, height, size.w])
        resample(x, into: rows, outer: planes * height, length: width, output: size.w, inner: 1, mode: mode)
        let result = context.allocate([x.shape[0], x.shape[1], size.h, size.w])
        resample(rows, into: result, outer: planes, length: height, output: size.h, inner: size.w, mode: mode)
        return result
    }

    private func resample(_ x: VulkanTensor, into result: VulkanTensor, outer: Int, length: Int, output: Int, inner: Int,
                          mode: InterpolationMode) {
        guard result.count > 0 else { return }
        // The taps, made once: [2, output * T], the indices' bits, then the weights.
        let taps = context.cachedValue("taps \(length) \(output) \(mode)") {
            let taps = InterpolationTaps(input: length, output: output, mode: mode)
            return upload(Tensor(shape: [2, taps.indices.count], values: taps.indices.map { Float(bitPattern: UInt32($0)) } + taps.weights))
        }
        let count = taps.shape[1] / output
        run(.resample, groups: elementGroups(result.count), reads: [x, taps], writes: [result]) { p in
            p.address(x)
            p.address(result)
            p.address(taps.selected(0, 0))
            p.address(taps.selected(0, 1))
            p.uint(outer, length, output, inner, count)
        }
    }

    public func binary(_ a: VulkanTensor, _ operation: BinaryOperation, _ b: VulkanTensor) -> VulkanTensor {
        let shape = broadcastShape(a.shape, b.shape, "\(operation) of \(a.shape) and \(b.shape)")
        let result = context.allocate(shape)
        guard result.count > 0 else { return result }
        let aView = broadcast(a, to: shape), bView = broadcast(b, to: shape)
        guard let layout = collapse(shape, [aView.strides, bView.strides, result.strides]) else {
            preconditionFailure("\(operation): \(shape) has more than 6 dimensions that do not merge")
        }
        let code = switch operation {
        case .add: 0
        case .subtract: 1
        case .multiply: 2
        case .divide: 3
        }
        run(.binary, groups: elementGroups(result.count), reads: [a, b], writes: [result]) { p in
            p.address(aView)
            p.address(bView)
            p.address(result)
            p.uint(result.count, code)
            for size in layout.shape { p.uint(size) }
            for stride in layout.strides[0] { p.int(stride) }
            for stride in layout.strides[1] { p.int(stride) }
        }
        return result
    }

    public func mean(_ x: VulkanTensor, dim: Int, keepDim: Bool) -> VulkanTensor {
        precondition(x.shape.indices.contains(dim), "mean: dimension \(dim) of \(x.shape)")
        let x = contiguous(x)
        let outer = x.shape[..<dim].reduce(1, *), size = x.shape[dim], inner = x.shape[(dim + 1)...].reduce(1, *)
        var shape = x.shape
        if keepDim { shape[dim] = 1 } else { shape.remove(at: dim) }
        let result = context.allocate(shape)
        guard result.count > 0 else { return result }
        run(.mean, groups: elementGroups(result.count), reads: [x], writes: [result]) { p in
            p.address(x)
            p.address(result)
            p.uint(outer, size, inner)
        }
        return result
    }

    public func argmax(_ x: VulkanTensor) -> [Int] {
        let x = contiguous(x), width = x.shape.last ?? 1
        guard width > 0, x.count > 0 else { return [] }
        let rows = x.count / width
        let indices = context.allocate([rows])
        run(.argmax, groups: elementGroups(rows), reads: [x], writes: [indices]) { p in
            p.address(x)
            p.address(indices)
            p.uint(rows, width)
        }
        return download(indices).toArray().map { Int($0.bitPattern) }
    }

    public func maskBits(_ x: VulkanTensor, threshold: Float, counting thresholds: [Float]) -> MaskBits {
        precondition(x.shape.count >= 2 && thresholds.count <= maskBitsThresholds, "maskBits: \(x.shape), \(thresholds.count) thresholds")
        let x = contiguous(x)
        let (height, width) = (x.shape[x.shape.count - 2], x.shape[x.shape.count - 1])
        let planes = x.shape.dropLast(2).reduce(1, *), perPlane = (height * width + 31) / 32
        guard planes > 0, perPlane > 0 else {
            return MaskBits(planes: planes, height: height, width: width, words: [], counts: [Int](repeating: 0, count: planes * thresholds.count))
        }
        // Counts then bits in one buffer, so that one download (one wait) brings both.
        let countWords = planes * thresholds.count
        let result = context.allocate([countWords + planes * perPlane])
        let counts = result.sliced(0, 0..<countWords), bits = result.sliced(0, countWords..<result.count)
        fill(counts, 0)  // the bits of 0.0 are those of the integer 0
        // A workgroup row per plane, at most 65535 rows a dispatch.
        for first in stride(from: 0, to: planes, by: 65535) {
            run(.maskbits, groups: (min((perPlane + 255) / 256, 65535), min(planes - first, 65535), 1), reads: [x], writes: [bits, counts]) { p in
                p.address(x)
                p.address(bits)
                p.address(counts.count > 0 ? counts : nil)
                p.uint(first, height, width, perPlane, thresholds.count)
                let padded = thresholds + [Float](repeating: 0, count: maskBitsThresholds - thresholds.count)
                p.float(threshold, padded[0], padded[1], padded[2], padded[3])
            }
        }
        let words = download(result).toArray().map(\.bitPattern)
        return MaskBits(planes: planes, height: height, width: width, words: Array(words[countWords...]),
                        counts: words[..<countWords].map { Int($0) })
    }

    public var isDevice: Bool { true }
    /// The device's largest allocation (`maxMemoryAllocationSize`), as the pool's size classes
    /// round requests up.
    public var maximumValueBytes: Int {
        let limit = Int(context.device.info.maxAllocationBytes)
        return limit > 0 ? limit / 5 * 4 : Int.max
    }

    /// Workgroups of 256 for `rows` rows a subgroup each (the kernels loop over more than 65535).
    private func rowGroups(_ rows: Int) -> (Int, Int, Int) {
        let perGroup = max(256 / Int(max(context.device.info.subgroupSize, 1)), 1)
        return (min((rows + perGroup - 1) / perGroup, 65535), 1, 1)
    }

}
