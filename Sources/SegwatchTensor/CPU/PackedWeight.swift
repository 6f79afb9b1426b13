import CGemm
import Glibc

/// A linear layer's `[outputs, inputs]` weight packed once, at load, into the panels the AVX2
/// and AVX-512 products read (`cgemm.h`): 16 outputs at a time, blocks of inputs in the order the product
/// uses them. A call then packs only its activations, where OpenBLAS packs the weight on every
/// call — at the 197-token products of CLIP's image tower, a tenth of the time.
final class PackedWeight: Sendable {
    let outputs: Int
    let inputs: Int
    /// Whether the panels hold pairs of inputs rounded to bfloat16 (`cgemm_pack_bf16`, for
    /// `cgemm_packed_product_bf16`) rather than floats.
    let bfloat16: Bool
    /// 32-bit words in `panels`.
    let count: Int
    // Written once in init, read-only afterwards.
    nonisolated(unsafe) let panels: UnsafeMutablePointer<Float>

    init(_ weight: Tensor, bfloat16: Bool = false) {
        precondition(weight.rank == 2 && weight.isContiguous, "PackedWeight of a \(weight.shape) view")
        precondition(!bfloat16 || cpuRunsBFloat16, "bfloat16 weights on a CPU without AVX512_BF16")
        (outputs, inputs, self.bfloat16) = (weight.shape[0], weight.shape[1], bfloat16)
        count = max(bfloat16 ? cgemm_packed_count_bf16(outputs, inputs) : cgemm_packed_count(outputs, inputs), 1)
        panels = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64).bindMemory(to: Float.self, capacity: count)
        if bfloat16 {
            cgemm_pack_bf16(weight.pointer, outputs, inputs, UnsafeMutableRawPointer(panels).assumingMemoryBound(to: UInt32.self))
        } else {
            cgemm_pack_strided(weight.pointer, outputs, inputs, inputs, 1, panels)
        }
        // The plain values are not read again. Pages of a checkpoint's mapping that packing read
        // would otherwise stay resident beside the packed copy; MADV_PAGEOUT drops them (clean
        // file pages: one read again, by a neighbouring tensor, comes back from the file).
        guard weight.storage.isMapped else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: weight.pointer) + page - 1) & ~(page - 1)
        let end = (Int(bitPattern: weight.pointer + weight.count)) & ~(page - 1)
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, 21 /* MADV_PAGEOUT */) }
    }

    deinit { panels.deallocate() }
}

/// The build of cgemm.h's product and attention head that the CPU ops call on packed weights:
/// that of the kernels in use (none on baseline x86-64), unless `SEGWATCH_GEMM=openblas` asks
/// for OpenBLAS's product everywhere (to compare the two).
let packedKernels: KernelSet.Product? = getenv("SEGWATCH_GEMM").map { String(cString: $0) } == "openblas" ? nil : kernels.product

/// Whether weights are packed at load.
var packsWeights: Bool { packedKernels != nil }

extension KernelSet.Product {
    typealias ProductFunction = @convention(c) (Int, Int, Int, Int, UnsafePointer<Float>?, Int, UnsafePointer<Float>?, Int, Int, Float,
                                                UnsafeMutablePointer<Float>?, Int, UnsafePointer<Float>?, UnsafePointer<Float>?, Int,
                                                cgemm_activation) -> Void
    typealias AttentionFunction = @convention(c) (Int, Int, Int, Int, Float, UnsafePointer<Float>?, Int, UnsafePointer<Float>?, Int,
                                                  UnsafePointer<Float>?, Int, UnsafePointer<Float>?, Int,
                                                  UnsafeMutablePointer<Float>?, Int) -> Void

    /// `cgemm_packed_product` of this build: the same weights, arguments and results.
    var packedProduct: ProductFunction {
        switch self {
        case .avx2: cgemm_packed_product
        case .avx512: cgemm_packed_product_avx512
        }
    }

    /// `cgemm_attention_head` of this build.
    var attentionHead: AttentionFunction {
        switch self {
        case .avx2: cgemm_attention_head
        case .avx512: cgemm_attention_head_avx512
        }
    }
}

/// `weight` packed for `linear` when this CPU packs and the weight is large enough to pay:
/// a tensor of the same shape whose storage is the packed panels alone (the plain values are
/// released with `weight`, so a model does not hold its linear weights twice); otherwise `weight`.
/// With `bfloat16`, packed rounded to bfloat16 for the bfloat16 product.
func packedForLinear(_ weight: Tensor, bfloat16: Bool = false) -> Tensor {
    guard packsWeights, weight.rank == 2, weight.isContiguous, weight.count >= 4096 else { return weight }
    return Tensor(shape: weight.shape, storage: TensorStorage(packed: PackedWeight(weight, bfloat16: bfloat16)))
}

extension Tensor {
    /// The packed weight this tensor is, if it is one. A view of it (a slice, a transpose)
    /// cannot be read at all: its storage has no plain values.
    var packedWeight: PackedWeight? {
        guard let packed = storage.packedWeight else { return nil }
        precondition(offset == 0 && shape == [packed.outputs, packed.inputs] && isContiguous,
                     "a view \(shape) of a weight packed for linear: its plain values are not kept")
        return packed
    }
}

/// The activations the packed product applies as it stores its outputs.
func fusedActivation(_ activation: Activation?) -> cgemm_activation? {
    switch activation {
    case nil: CGEMM_IDENTITY
    case .quickGelu: CGEMM_QUICK_GELU
    case .gelu: CGEMM_GELU
    default: nil
    }
}

/// `c = activation(a * weightᵀ + bias + residual)` for `m` rows of `a` (row stride `lda`;
/// `residual` shaped as `c`): over the current engine's threads by panels of 16 outputs, each
/// thread packing the activations it reads; by rows when there are too few panels to share.
/// `build` is the product's build, that of the kernels in use unless a test asks for another; a
/// bfloat16 weight takes the bfloat16 product whatever the build.
func packedProduct(m: Int, a: UnsafePointer<Float>, lda: Int, _ weight: PackedWeight,
                   c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?,
                   activation: cgemm_activation = CGEMM_IDENTITY, build: KernelSet.Product? = packedKernels) {
    let (n, k) = (weight.outputs, weight.inputs)
    let panels = (n + 15) / 16
    let product = build!.packedProduct
    func call(_ rows: Range<Int>, _ panelRange: Range<Int>) {
        if weight.bfloat16 {
            let words = UnsafeRawPointer(weight.panels).assumingMemoryBound(to: UInt32.self)
            cgemm_packed_product_bf16(rows.lowerBound, rows.upperBound, n, k, a, lda, words,
                                      panelRange.lowerBound, panelRange.upperBound, 1, c, ldc, bias, residual, ldc, activation)
        } else {
            product(rows.lowerBound, rows.upperBound, n, k, a, lda, weight.panels,
                    panelRange.lowerBound, panelRange.upperBound, 1, c, ldc, bias, residual, ldc, activation)
        }
    }
    if m * n * k < sgemmSplitThreshold {
        call(0..<m, 0..<panels)
    } else if panels >= 2 * CPUEngine.current.threads {
        parallelFor(panels) { call(0..<m, $0) }
    } else {
        // Blocks of whole 6-row tiles.
        parallelFor((m + 5) / 6) { tiles in call(tiles.lowerBound * 6..<min(m, tiles.upperBound * 6), 0..<panels) }
    }
}
