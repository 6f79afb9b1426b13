import SegwatchTensor

/// A float32 tensor in device memory: a shape and strides (in elements) over a device buffer,
/// as `Tensor` is over host storage. Views share the buffer; kernels that need rows in order
/// make a contiguous copy first. A linear layer's weight may be float16 instead (`half`), which
/// only the products read.
public struct VulkanTensor: Sendable {
    public let shape: [Int]
    let strides: [Int]
    let offset: Int
    let buffer: DeviceBuffer
    /// Elements are float16.
    let half: Bool

    init(shape: [Int], strides: [Int]? = nil, offset: Int = 0, buffer: DeviceBuffer, half: Bool = false) {
        self.shape = shape
        self.strides = strides ?? Tensor.contiguousStrides(shape)
        self.offset = offset
        self.buffer = buffer
        self.half = half
    }

    /// Bytes per element.
    var elementBytes: Int { half ? 2 : 4 }

    /// Another view of the same buffer and element type.
    private func view(_ shape: [Int], strides: [Int]? = nil, offset: Int) -> VulkanTensor {
        VulkanTensor(shape: shape, strides: strides, offset: offset, buffer: buffer, half: half)
    }

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }

    /// Whether elements are stored row-major without gaps.
    var isContiguous: Bool {
        var step = 1
        for i in shape.indices.reversed() where shape[i] != 1 {
            if strides[i] != step { return false }
            step *= shape[i]
        }
        return true
    }

    func permuted(_ order: [Int]) -> VulkanTensor {
        precondition(order.sorted() == Array(0..<rank), "\(order) is not a permutation of \(rank) dimensions")
        return view(order.map { shape[$0] }, strides: order.map { strides[$0] }, offset: offset)
    }

    func sliced(_ dim: Int, _ range: Range<Int>) -> VulkanTensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[dim], "slice \(range) outside \(shape[dim]) of \(shape)")
        var newShape = shape
        newShape[dim] = range.count
        return view(newShape, strides: strides, offset: offset + range.lowerBound * strides[dim])
    }

    func selected(_ dim: Int, _ index: Int) -> VulkanTensor {
        precondition(index >= 0 && index < shape[dim], "index \(index) outside \(shape[dim]) of \(shape)")
        var newShape = shape, newStrides = strides
        newShape.remove(at: dim)
        newStrides.remove(at: dim)
        return view(newShape, strides: newStrides, offset: offset + index * strides[dim])
    }

    func expanded(_ newShape: [Int]) -> VulkanTensor {
        precondition(newShape.count == rank && zip(shape, newShape).allSatisfy { $0 == $1 || $0 == 1 },
                     "cannot expand \(shape) to \(newShape)")
        let newStrides = zip(shape, newShape).enumerated().map { $1.0 == $1.1 ? strides[$0] : 0 }
        return view(newShape, strides: newStrides, offset: offset)
    }

    /// A view of the same buffer starting `elements` further (a kernel's part of a larger call;
    /// the shape is the kernel's concern).
    func shifted(by elements: Int) -> VulkanTensor {
        view(shape, strides: strides, offset: offset + elements)
    }

    /// The same elements under another shape; only for contiguous tensors.
    func viewed(_ newShape: [Int]) -> VulkanTensor {
        precondition(isContiguous && newShape.reduce(1, *) == count, "cannot view \(shape) as \(newShape)")
        return view(newShape, offset: offset)
    }
}

/// The dimensions of `shape` as several strided layouts walk it, with neighbours merged where
/// every layout allows it and size-1 dimensions dropped, padded at the front with size 1 to
/// `rank` (the kernels' fixed rank); nil when more than `rank` remain.
func collapse(_ shape: [Int], _ layouts: [[Int]], rank: Int = 6) -> (shape: [Int], strides: [[Int]])? {
    var sizes: [Int] = []
    var strides: [[Int]] = Array(repeating: [], count: layouts.count)
    for i in shape.indices.reversed() where shape[i] != 1 {
        if let inner = sizes.last, layouts.indices.allSatisfy({ layouts[$0][i] == strides[$0].last! * inner }) {
            sizes[sizes.count - 1] *= shape[i]
        } else {
            sizes.append(shape[i])
            for l in layouts.indices { strides[l].append(layouts[l][i]) }
        }
    }
    guard sizes.count <= rank else { return nil }
    let padding = rank - sizes.count
    return ([Int](repeating: 1, count: padding) + sizes.reversed(),
            strides.map { [Int](repeating: 0, count: padding) + $0.reversed() })
}
