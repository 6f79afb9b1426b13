/// A float32 tensor in host memory: a shape and strides over a storage.
///
/// Views (reshape of contiguous data, permute, slice) share storage; `contiguous()` copies
/// only when the layout is not already row-major.
public struct Tensor: Sendable {
    public let shape: [Int]
    /// Elements (not bytes) between neighbours along each dimension.
    public let strides: [Int]
    /// Index of the first element in the storage.
    public let offset: Int
    public let storage: TensorStorage

    /// A view of `storage`.
    public init(shape: [Int], strides: [Int]? = nil, offset: Int = 0, storage: TensorStorage) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.strides = strides ?? Tensor.contiguousStrides(shape)
        self.offset = offset
        self.storage = storage
    }

    /// A new contiguous tensor holding `values` (row-major).
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        let storage = TensorStorage(count: values.count)
        values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: values.count) }
        self.init(shape: shape, storage: storage)
    }

    /// A new zero-filled contiguous tensor.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(count: shape.reduce(1, *)))
    }

    /// A new contiguous tensor whose values the caller writes next (kernels' outputs).
    public init(uninitialized shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(count: shape.reduce(1, *), zeroed: false))
    }

    /// The first element; with a contiguous tensor, all of them in row-major order.
    public var pointer: UnsafeMutablePointer<Float> {
        // Checked in debug builds only: this is read in inner loops.
        assert(storage.packedWeight == nil,
               "a weight packed for linear at load (Backend.linearWeight) keeps no plain values; read them before packing")
        return storage.pointer + offset
    }

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var step = 1
        for i in shape.indices.reversed() {
            strides[i] = step
            step *= max(shape[i], 1)
        }
        return strides
    }

    /// Whether elements are stored row-major without gaps.
    public var isContiguous: Bool {
        var step = 1
        for i in shape.indices.reversed() where shape[i] != 1 {
            if strides[i] != step { return false }
            step *= shape[i]
        }
        return true
    }

    /// The same values in row-major order, sharing storage when already so laid out.
    public func contiguous() -> Tensor {
        isContiguous ? self : copied()
    }

    /// A new contiguous copy that shares nothing with this tensor.
    public func copied() -> Tensor {
        let result = Tensor(uninitialized: shape)
        copy(self, into: result)
        return result
    }

    /// Calls `body` with the storage index of every element, in row-major order.
    func forEachOffset(_ body: (Int) -> Void) {
        SegwatchTensor.forEachOffset(shape: shape, strides: strides, offset: offset, body)
    }

    /// The values in row-major order.
    public func toArray() -> [Float] {
        if isContiguous { return Array(UnsafeBufferPointer(start: storage.pointer + offset, count: count)) }
        var values: [Float] = []
        values.reserveCapacity(count)
        forEachOffset { values.append(storage.pointer[$0]) }
        return values
    }

    /// A view with another shape of the same count; copies first if not contiguous.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        let base = contiguous()
        return Tensor(shape: newShape, offset: base.offset, storage: base.storage)
    }

    /// A view with dimensions reordered: result dimension i is dimension `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "\(order) is not a permutation of \(rank) dimensions")
        return Tensor(shape: order.map { shape[$0] }, strides: order.map { strides[$0] }, offset: offset, storage: storage)
    }

    /// A view of element `index` along dimension `dim`, without that dimension (torch's `x[..., index, ...]`).
    public func selected(_ dim: Int, _ index: Int) -> Tensor {
        precondition(index >= 0 && index < shape[dim], "index \(index) outside \(shape[dim])")
        var newShape = shape, newStrides = strides
        newShape.remove(at: dim)
        newStrides.remove(at: dim)
        return Tensor(shape: newShape, strides: newStrides, offset: offset + index * strides[dim], storage: storage)
    }

    /// A view repeating size-1 dimensions to `newShape` with stride 0 (torch's `expand`).
    public func expanded(_ newShape: [Int]) -> Tensor {
        precondition(newShape.count == rank && zip(shape, newShape).allSatisfy { $0 == $1 || $0 == 1 },
                     "cannot expand \(shape) to \(newShape)")
        let newStrides = zip(shape, newShape).enumerated().map { $1.0 == $1.1 ? strides[$0] : 0 }
        return Tensor(shape: newShape, strides: newStrides, offset: offset, storage: storage)
    }

    /// A view of `range` along dimension `dim`.
    public func sliced(_ dim: Int, _ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[dim], "slice \(range) outside \(shape[dim])")
        var newShape = shape
        newShape[dim] = range.count
        return Tensor(shape: newShape, strides: strides, offset: offset + range.lowerBound * strides[dim], storage: storage)
    }
}

/// Calls `body` with the storage index of every element of a strided layout, in row-major order.
func forEachOffset(shape: [Int], strides: [Int], offset: Int, _ body: (Int) -> Void) {
    guard shape.allSatisfy({ $0 > 0 }) else { return }
    let rank = shape.count
    if rank == 0 { body(offset); return }
    var position = [Int](repeating: 0, count: rank)
    var current = offset
    while true {
        body(current)
        var dim = rank - 1
        while dim >= 0 {
            position[dim] += 1
            current += strides[dim]
            if position[dim] < shape[dim] { break }
            current -= strides[dim] * shape[dim]
            position[dim] = 0
            dim -= 1
        }
        if dim < 0 { return }
    }
}

/// Every storage index of a strided layout, in row-major order.
func offsets(shape: [Int], strides: [Int], offset: Int = 0) -> [Int] {
    var offsets: [Int] = []
    offsets.reserveCapacity(shape.reduce(1, *))
    forEachOffset(shape: shape, strides: strides, offset: offset) { offsets.append($0) }
    return offsets
}

/// The storage index of the first element of every last-dimension row, in row-major order.
func rowOffsets(_ t: Tensor) -> [Int] {
    offsets(shape: Array(t.shape.dropLast()), strides: Array(t.strides.dropLast()), offset: t.offset)
}
