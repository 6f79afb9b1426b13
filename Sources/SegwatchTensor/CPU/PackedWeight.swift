import CGemm
import Glibc

/// A linear layer's `[outputs, inputs]` weight packed once, at load, into the panels the AVX2
/// product reads (`cgemm.h`): 16 outputs at a time, blocks of inputs in the order the product
/// uses them. A call then packs only its activations, where OpenBLAS packs the weight on every
/// call — at the 197-token products of CLIP's image tower, a tenth of the time.
final class PackedWeight: Sendable {
    let outputs: Int
    let inputs: Int
    // Written once in init, read-only afterwards.
    nonisolated(unsafe) let panels: UnsafeMutablePointer<Float>

    init(_ weight: Tensor) {
        precondition(weight.rank == 2 && weight.isContiguous, "PackedWeight of a \(weight.shape) view")
        (outputs, inputs) = (weight.shape[0], weight.shape[1])
        let count = max(cgemm_packed_count(outputs, inputs), 1)
        panels = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
        cgemm_pack_weight(weight.pointer, outputs, inputs, panels)
    }

    deinit { panels.deallocate() }
}

/// Whether weights are packed: on CPUs with the AVX2 kernels, unless `SEGWATCH_GEMM=openblas`
/// asks for OpenBLAS's product everywhere (to compare the two).
let packsWeights = kernels.name == KernelSet.avx2.name
    && getenv("SEGWATCH_GEMM").map { String(cString: $0) } != "openblas"

/// `weight` carrying a packed copy for `linear`, when this CPU packs and the weight is large
/// enough for the copy to pay; otherwise `weight` itself.
func packedForLinear(_ weight: Tensor) -> Tensor {
    guard packsWeights, weight.rank == 2, weight.isContiguous, weight.count >= 4096 else { return weight }
    let storage = TensorStorage(borrowing: weight.pointer, count: weight.count, owner: weight.storage,
                                packed: PackedWeight(weight))
    return Tensor(shape: weight.shape, storage: storage)
}

extension Tensor {
    /// The packed copy of this weight, when this view is the whole of what was packed.
    var packedWeight: PackedWeight? {
        guard let packed = storage.packedWeight, offset == 0, shape == [packed.outputs, packed.inputs], isContiguous
        else { return nil }
        return packed
    }
}

/// `c = a * weightᵀ + bias + residual` for `m` rows of `a` (row stride `lda`; `residual` shaped
/// as `c`): over `CPUThreads.count` threads by panels of 16 outputs, each thread packing the
/// activations it reads; by rows when there are too few panels to share.
func packedProduct(m: Int, a: UnsafePointer<Float>, lda: Int, _ weight: PackedWeight,
                   c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?) {
    let (n, k) = (weight.outputs, weight.inputs)
    let panels = (n + 15) / 16
    func call(_ rows: Range<Int>, _ panelRange: Range<Int>) {
        cgemm_packed_product(rows.lowerBound, rows.upperBound, n, k, a, lda, weight.panels,
                             panelRange.lowerBound, panelRange.upperBound, 1, c, ldc, bias, residual, ldc)
    }
    if CPUThreads.count == 1 || m * n * k < sgemmSplitThreshold || insideParallelRegion {
        call(0..<m, 0..<panels)
    } else if panels >= 2 * CPUThreads.count {
        parallelFor(panels) { call(0..<m, $0) }
    } else {
        // Blocks of whole 6-row tiles.
        parallelFor((m + 5) / 6) { tiles in call(tiles.lowerBound * 6..<min(m, tiles.upperBound * 6), 0..<panels) }
    }
}
