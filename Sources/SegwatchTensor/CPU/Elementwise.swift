/// Binary elementwise operations with torch broadcasting.
public enum BinaryOperation: Sendable {
    case add, subtract, multiply, divide

    /// `x op b` as `x * scale + shift`, where that is exact: not for division.
    func affine(_ b: Float) -> (scale: Float, shift: Float)? {
        switch self {
        case .add: (1, b)
        case .subtract: (1, -b)
        case .multiply: (b, 0)
        case .divide: nil
        }
    }

    @inline(__always)
    func apply(_ a: Float, _ b: Float) -> Float {
        switch self {
        case .add: return a + b
        case .subtract: return a - b
        case .multiply: return a * b
        case .divide: return a / b
        }
    }
}

/// `a op b` with broadcasting (`torch.add`, `torch.mul`, ...).
public func binary(_ a: Tensor, _ operation: BinaryOperation, _ b: Tensor) -> Tensor {
    let kernel = switch operation {
    case .add: kernels.add
    case .subtract: kernels.subtract
    case .multiply: kernels.multiply
    case .divide: kernels.divide
    }
    if a.shape == b.shape && a.isContiguous && b.isContiguous {
        let result = Tensor(uninitialized: a.shape)
        let x = a.pointer, y = b.pointer, out = result.pointer
        parallelFor(a.count, grain: 16384) { range in
            kernel(x + range.lowerBound, y + range.lowerBound, out + range.lowerBound, range.count)
        }
        return result
    }
    let rank = max(a.rank, b.rank)
    func expanded(_ t: Tensor) -> (shape: [Int], strides: [Int]) {
        let pad = rank - t.rank
        return ([Int](repeating: 1, count: pad) + t.shape, [Int](repeating: 0, count: pad) + t.strides)
    }
    let (aShape, aStrides) = expanded(a), (bShape, bStrides) = expanded(b)
    var shape: [Int] = []
    for i in 0..<rank {
        precondition(aShape[i] == bShape[i] || aShape[i] == 1 || bShape[i] == 1,
                     "shapes \(a.shape) and \(b.shape) do not broadcast")
        shape.append(aShape[i] == 1 ? bShape[i] : aShape[i])  // 1 broadcasts, even to 0
    }
    let va = Tensor(shape: shape, strides: (0..<rank).map { aShape[$0] == 1 ? 0 : aStrides[$0] }, offset: a.offset, storage: a.storage)
    let vb = Tensor(shape: shape, strides: (0..<rank).map { bShape[$0] == 1 ? 0 : bStrides[$0] }, offset: b.offset, storage: b.storage)
    let result = Tensor(uninitialized: shape)
    let out = result.pointer, x = a.storage.pointer, y = b.storage.pointer
    guard result.count > 0 else { return result }
    if rank == 0 {
        out.pointee = operation.apply(a.pointer.pointee, b.pointer.pointee)
        return result
    }
    // Walk the outer dimensions; the innermost is the vector kernel when both sides are dense
    // along it (a bias added to every row of a batch), else a strided loop.
    let inner = shape[rank - 1], aStep = va.strides[rank - 1], bStep = vb.strides[rank - 1]
    let aRows = rowOffsets(va), bRows = rowOffsets(vb)
    parallelFor(aRows.count, grain: max(1, 16384 / max(inner, 1))) { rows in
        for row in rows {
            let target = out + row * inner, ao = aRows[row], bo = bRows[row]
            if aStep == 1 && bStep == 1 {
                kernel(x + ao, y + bo, target, inner)
            } else if aStep == 1 && bStep == 0, let (scale, shift) = operation.affine(y[bo]) {
                kernels.affine(x + ao, target, inner, scale, shift)                // rows scaled or shifted
            } else if aStep == 0 && bStep == 1, operation == .add || operation == .multiply, let (scale, shift) = operation.affine(x[ao]) {
                kernels.affine(y + bo, target, inner, scale, shift)
            } else {
                for i in 0..<inner { target[i] = operation.apply(x[ao + i * aStep], y[bo + i * bStep]) }
            }
        }
    }
    return result
}

public func add(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, .add, b) }
public func mul(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, .multiply, b) }

/// `x * scale + shift` for every element.
public func affine(_ x: Tensor, scale: Float, shift: Float = 0) -> Tensor {
    let x = x.contiguous(), result = Tensor(uninitialized: x.shape)
    let input = x.pointer, output = result.pointer
    parallelFor(x.count, grain: 16384) { range in
        kernels.affine(input + range.lowerBound, output + range.lowerBound, range.count, scale, shift)
    }
    return result
}

/// `torch.nn.functional.pad` with a constant: `padding[d]` is (before, after) for dimension d.
public func pad(_ x: Tensor, _ padding: [(before: Int, after: Int)], value: Float = 0) -> Tensor {
    precondition(padding.count == x.rank && padding.allSatisfy { $0.before >= 0 && $0.after >= 0 },
                 "pad: \(padding) for a tensor of rank \(x.rank)")
    let shape = (0..<x.rank).map { x.shape[$0] + padding[$0].before + padding[$0].after }
    let result = Tensor(uninitialized: shape)
    result.pointer.update(repeating: value, count: result.count)
    let offset = zip(padding, result.strides).reduce(0) { $0 + $1.0.before * $1.1 }
    copy(x, into: Tensor(shape: x.shape, strides: result.strides, offset: offset, storage: result.storage))
    return result
}

/// `torch.cat` along `dim`.
public func concat(_ tensors: [Tensor], dim: Int) -> Tensor {
    precondition(!tensors.isEmpty, "concat of no tensors")
    var shape = tensors[0].shape
    for t in tensors.dropFirst() {
        precondition(t.rank == shape.count && (0..<t.rank).allSatisfy { $0 == dim || t.shape[$0] == shape[$0] },
                     "concat: \(t.shape) does not match \(tensors[0].shape) outside dimension \(dim)")
    }
    shape[dim] = tensors.reduce(0) { $0 + $1.shape[dim] }
    let result = Tensor(uninitialized: shape)
    var start = 0
    for t in tensors {
        copy(t, into: result.sliced(dim, start..<start + t.shape[dim]))
        start += t.shape[dim]
    }
    return result
}

/// Copies `source` into the same-shaped view `target` (whose storage the caller owns).
func copy(_ source: Tensor, into target: Tensor) {
    precondition(source.shape == target.shape, "copy: \(source.shape) into \(target.shape)")
    guard source.count > 0 else { return }
    if source.rank == 0 { target.pointer.pointee = source.pointer.pointee; return }
    // Dimensions laid out one inside the other on both sides are one dimension: a permuted
    // copy then moves rows as long as the layouts allow, not one row per last dimension.
    var shape: [Int] = [], sStrides: [Int] = [], tStrides: [Int] = []
    for d in 0..<source.rank where source.shape[d] != 1 {
        if let last = shape.indices.last, sStrides[last] == source.strides[d] * source.shape[d],
           tStrides[last] == target.strides[d] * source.shape[d] {
            shape[last] *= source.shape[d]
            sStrides[last] = source.strides[d]
            tStrides[last] = target.strides[d]
        } else {
            shape.append(source.shape[d])
            sStrides.append(source.strides[d])
            tStrides.append(target.strides[d])
        }
    }
    if shape.isEmpty { (shape, sStrides, tStrides) = ([1], [1], [1]) }
    let s = source.storage.pointer, t = target.storage.pointer
    // A row is the last dimension when it is a contiguous run of 16 or more (copied whole) or
    // long. Shorter runs grow into a block of trailing dimensions of at least 256 elements,
    // walked through offsets computed once, so that only the blocks' starts are listed (a pixel
    // shuffle's runs of 2 would otherwise list an offset per 2 floats).
    let last = shape.count - 1
    let dense = sStrides[last] == 1 && tStrides[last] == 1 && shape[last] >= 16
    var split = last, block = shape[last]
    while !dense && split > 0 && block < 256 && block * shape[split - 1] <= 65536 {
        split -= 1
        block *= shape[split]
    }
    let sRows = offsets(shape: Array(shape[..<split]), strides: Array(sStrides[..<split]), offset: source.offset)
    let tRows = offsets(shape: Array(shape[..<split]), strides: Array(tStrides[..<split]), offset: target.offset)
    let (sStep, tStep) = (sStrides[last], tStrides[last])
    let sBlock = split < last ? offsets(shape: Array(shape[split...]), strides: Array(sStrides[split...])) : []
    let tBlock = split < last ? offsets(shape: Array(shape[split...]), strides: Array(tStrides[split...])) : []
    parallelFor(sRows.count, grain: max(1, 32768 / block)) { rows in
        sBlock.withUnsafeBufferPointer { sBlock in
            tBlock.withUnsafeBufferPointer { tBlock in
                for row in rows {
                    let from = s + sRows[row], to = t + tRows[row]
                    if dense {
                        to.update(from: from, count: block)
                    } else if split == last {
                        for i in 0..<block { to[i * tStep] = from[i * sStep] }
                    } else {
                        for i in 0..<block { to[tBlock[i]] = from[sBlock[i]] }
                    }
                }
            }
        }
    }
}

/// `x.mean(dim, keepdim)`.
public func mean(_ x: Tensor, dim: Int, keepDim: Bool = false) -> Tensor {
    let x = x.contiguous()
    let outer = x.shape[..<dim].reduce(1, *), size = x.shape[dim], inner = x.shape[(dim + 1)...].reduce(1, *)
    var shape = x.shape
    if keepDim { shape[dim] = 1 } else { shape.remove(at: dim) }
    let result = Tensor(zeros: shape)
    let input = x.pointer, output = result.pointer
    parallelFor(outer) { range in
        for o in range {
            let target = output + o * inner
            for s in 0..<size {
                let row = input + (o * size + s) * inner
                for i in 0..<inner { target[i] += row[i] }
            }
            for i in 0..<inner { target[i] /= Float(size) }
        }
    }
    return result
}

/// `x.argmax(-1)`: the index of the largest value of each last-dimension row (the first one on
/// ties, as torch does), read back to the host.
public func argmax(_ x: Tensor) -> [Int] {
    let x = x.contiguous(), width = x.shape.last ?? 1
    guard width > 0 else { return [] }
    return (0..<(x.count / width)).map { row in
        let values = x.pointer + row * width
        var best = 0
        for i in 1..<width where values[i] > values[best] || (values[i].isNaN && !values[best].isNaN) { best = i }
        return best
    }
}

/// `v / |v|` for one embedding; a zero vector stays zero.
public func normalized(_ values: some Collection<Float>) -> [Float] {
    let norm = max(values.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
    return values.map { $0 / norm }
}
