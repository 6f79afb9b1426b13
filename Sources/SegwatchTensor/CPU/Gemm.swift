import CGemm
import COpenBLAS

/// Products smaller than this many multiply-adds run on one thread: splitting costs more.
let sgemmSplitThreshold = 1 << 21

/// Row-major `C = alpha * op(A) * op(B) + beta * C` through single-threaded calls, one per
/// thread on a block of C's rows (or of its columns when C is wide and short): on the AVX-512
/// build, segwatch's own product (`cgemm_sgemm_avx512`) when `beta` is 0 or 1; else OpenBLAS.
/// With `bfloat16` (only where `cpuRunsBFloat16`), untransposed operands with `alpha` 1 and
/// `beta` 0 or 1 are multiplied in bfloat16 (`cgemm_sgemm_bf16`).
func sgemm(m: Int, n: Int, k: Int, alpha: Float = 1,
           a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
           b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, build: KernelSet.Product? = packedKernels,
           bfloat16: Bool = false) {
    let ownProduct = build == .avx512 && (beta == 0 || beta == 1)
    let halfProduct = bfloat16 && !transposeA && !transposeB && alpha == 1 && (beta == 0 || beta == 1)
    func call(_ m: Int, _ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
        if halfProduct {
            cgemm_sgemm_bf16(m, n, k, a, lda, b, ldb, beta == 1 ? 1 : 0, c, ldc)
        } else if ownProduct {
            cgemm_sgemm_avx512(m, n, k, alpha, a, lda, transposeA ? 1 : 0, b, ldb, transposeB ? 1 : 0, beta == 1 ? 1 : 0, c, ldc)
        } else {
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }
    let threads = CPUEngine.current.threads
    guard threads > 1, m * n * k >= sgemmSplitThreshold, !insideParallelRegion else {
        call(m, n, a, b, c)
        return
    }
    // Blocks are multiples of 16 so that every thread's edge stays on the kernel's tiles.
    // Split the way whose slowest thread has least to do: its block's multiply-adds, plus the
    // operand every thread packs whole (B when splitting rows, A when splitting columns), at
    // about 16 multiply-adds per packed value. ViT's 197-token products split by columns:
    // by rows, one thread would get 112 rows and the other 85.
    let rowBlock = ((m + threads - 1) / threads + 15) & ~15, columnBlock = ((n + threads - 1) / threads + 15) & ~15
    let byRows = min(rowBlock, m) * n * k + 16 * n * k, byColumns = m * min(columnBlock, n) * k + 16 * m * k
    if byRows <= byColumns {
        let block = rowBlock
        parallelFor((m + block - 1) / block) { range in
            for i in range {
                let row = i * block
                call(min(block, m - row), n, transposeA ? a + row : a + row * lda, b, c + row * ldc)
            }
        }
    } else {
        let block = columnBlock
        parallelFor((n + block - 1) / block) { range in
            for j in range {
                let column = j * block
                call(m, min(block, n - column), a, transposeB ? b + column * ldb : b + column, c + column)
            }
        }
    }
}

/// How the last two dimensions of a tensor map onto a BLAS matrix without a copy: row-major
/// with a leading dimension, or (for a transposed view) column-major.
private struct MatrixLayout {
    var transposed: Bool
    var leading: Int

    init?(_ t: Tensor) {
        let rows = t.shape[t.rank - 2], columns = t.shape[t.rank - 1]
        let rowStride = t.strides[t.rank - 2], columnStride = t.strides[t.rank - 1]
        if columnStride == 1 || columns == 1, rows == 1 || rowStride >= max(columns, 1) {
            self.init(transposed: false, leading: rows == 1 ? max(columns, 1) : rowStride)
        } else if rowStride == 1 || rows == 1, columns == 1 || columnStride >= max(rows, 1) {
            self.init(transposed: true, leading: columns == 1 ? max(rows, 1) : columnStride)
        } else {
            return nil
        }
    }

    private init(transposed: Bool, leading: Int) {
        self.transposed = transposed
        self.leading = leading
    }
}

/// Shape and per-operand strides of broadcast batch dimensions (torch.matmul semantics).
private func broadcastBatch(_ a: Tensor, _ b: Tensor) -> (shape: [Int], a: [Int], b: [Int]) {
    let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
    let rank = max(aBatch.count, bBatch.count)
    var shape: [Int] = [], aStrides: [Int] = [], bStrides: [Int] = []
    for i in 0..<rank {
        let ai = i - (rank - aBatch.count), bi = i - (rank - bBatch.count)
        let aSize = ai >= 0 ? aBatch[ai] : 1, bSize = bi >= 0 ? bBatch[bi] : 1
        precondition(aSize == bSize || aSize == 1 || bSize == 1,
                     "matmul batch dimensions \(aBatch) and \(bBatch) do not broadcast")
        shape.append(aSize == 1 ? bSize : aSize)  // 1 broadcasts, even to 0
        aStrides.append(ai >= 0 && aSize != 1 ? a.strides[ai] : 0)
        bStrides.append(bi >= 0 && bSize != 1 ? b.strides[bi] : 0)
    }
    return (shape, aStrides, bStrides)
}

/// `torch.matmul` for operands of rank 2 or more: `[..., M, K] x [..., K, N] -> [..., M, N]`,
/// batch dimensions broadcast. Strided and transposed views are passed to BLAS as they are.
/// With `bfloat16`, untransposed operands multiply in bfloat16 (`sgemm`'s).
public func matmul(_ a: Tensor, _ b: Tensor, bfloat16: Bool = false) -> Tensor {
    precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank >= 2, got \(a.shape) and \(b.shape)")
    let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
    precondition(b.shape[b.rank - 2] == k, "matmul inner dimensions differ: \(a.shape) x \(b.shape)")
    let a = MatrixLayout(a) == nil ? a.contiguous() : a
    let b = MatrixLayout(b) == nil ? b.contiguous() : b
    let aLayout = MatrixLayout(a)!, bLayout = MatrixLayout(b)!
    let batch = broadcastBatch(a, b)

    // A batch of row-major A against one B is a single taller product.
    if b.rank == 2, !aLayout.transposed, a.isContiguous {
        let result = Tensor(uninitialized: a.shape.dropLast() + [n])
        let rows = a.shape.dropLast().reduce(1, *)
        if rows > 0, n > 0 { product(rows, n, k, a.pointer, aLayout, b.pointer, bLayout, result.pointer, bfloat16: bfloat16) }
        return result
    }

    let result = Tensor(uninitialized: batch.shape + [m, n])
    guard m > 0, n > 0 else { return result }
    let aOffsets = offsets(shape: batch.shape, strides: batch.a), bOffsets = offsets(shape: batch.shape, strides: batch.b)
    func run(_ item: Int) {
        product(m, n, k, a.pointer + aOffsets[item], aLayout, b.pointer + bOffsets[item], bLayout, result.pointer + item * m * n,
                bfloat16: bfloat16)
    }
    // Items shared out whole among the threads when each gets as many: no thread packs an
    // operand another thread also packs, and small products (a prompt's 56 rows) are not split.
    let items = aOffsets.count, threads = CPUEngine.current.threads
    if items % threads == 0 || items >= 4 * threads {
        parallelFor(items) { range in range.forEach(run) }
    } else {
        (0..<items).forEach(run)
    }
    return result
}

private func product(_ m: Int, _ n: Int, _ k: Int,
                     _ a: UnsafePointer<Float>, _ aLayout: MatrixLayout,
                     _ b: UnsafePointer<Float>, _ bLayout: MatrixLayout, _ c: UnsafeMutablePointer<Float>, bfloat16: Bool) {
    if k == 0 {
        c.update(repeating: 0, count: m * n)
        return
    }
    sgemm(m: m, n: n, k: k, a: a, lda: aLayout.leading, transposeA: aLayout.transposed,
          b: b, ldb: bLayout.leading, transposeB: bLayout.transposed, c: c, ldc: n, bfloat16: bfloat16)
}

/// `torch.nn.functional.linear`: `x [..., in]` times `weight [out, in]` transposed, plus `bias [out]`,
/// plus `residual` (shaped as the result) when given: the product accumulates onto the bias and
/// residual, written first, so neither costs a pass of its own. Then `activation`, when given:
/// applied as the outputs are stored where the product can (GELU and quickGELU on a packed
/// weight), else in a pass over the result.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, adding residual: Tensor? = nil, activation: Activation? = nil) -> Tensor {
    if let activation, weight.packedWeight == nil || fusedActivation(activation) == nil {
        let result = linear(x, weight: weight, bias: bias, adding: residual)
        activateInPlace(result, activation)
        return result
    }
    precondition(weight.rank == 2 && x.shape.last == weight.shape[1],
                 "linear: input \(x.shape) does not match weight \(weight.shape)")
    let inputs = weight.shape[1], outputs = weight.shape[0]
    let x = x.contiguous(), weight = weight.contiguous()
    let rows = x.shape.dropLast().reduce(1, *)
    let result = Tensor(uninitialized: x.shape.dropLast() + [outputs])
    let c = result.pointer
    if let bias { precondition(bias.shape == [outputs], "linear: bias \(bias.shape) for \(outputs) outputs") }
    if let residual { precondition(residual.shape == result.shape, "linear: residual \(residual.shape) for a result of \(result.shape)") }
    let start = (bias: bias?.contiguous(), residual: residual?.contiguous())
    guard rows > 0, outputs > 0 else { return result }
    if inputs > 0, let packed = weight.packedWeight, let fused = fusedActivation(activation) {
        packedProduct(m: rows, a: x.pointer, lda: inputs, packed, c: c, ldc: outputs,
                      bias: start.bias?.pointer, residual: start.residual?.pointer, activation: fused)
        return result
    }

    let accumulate = start.bias != nil || start.residual != nil
    if accumulate {
        parallelFor(rows, grain: 64) { range in
            for row in range {
                let target = c + row * outputs
                switch (start.bias, start.residual) {
                case let (bias?, residual?): kernels.add(residual.pointer + row * outputs, bias.pointer, target, outputs)
                case let (nil, residual?): target.update(from: residual.pointer + row * outputs, count: outputs)
                case let (bias?, nil): target.update(from: bias.pointer, count: outputs)
                case (nil, nil): break
                }
            }
        }
    }
    if inputs == 0 {
        if !accumulate { c.update(repeating: 0, count: rows * outputs) }
        return result
    }
    sgemm(m: rows, n: outputs, k: inputs, a: x.pointer, lda: inputs, b: weight.pointer, ldb: inputs,
          transposeB: true, beta: accumulate ? 1 : 0, c: c, ldc: outputs)
    return result
}
