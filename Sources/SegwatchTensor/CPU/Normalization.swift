/// `torch.nn.functional.layer_norm` over the last dimension.
public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
    let width = x.shape.last ?? 1
    precondition(weight.count == width && bias.count == width,
                 "layer_norm: weight \(weight.shape) and bias \(bias.shape) for last dimension \(width)")
    let x = x.contiguous(), result = Tensor(uninitialized: x.shape)
    let input = x.pointer, output = result.pointer
    let gamma = weight.contiguous().pointer, beta = bias.contiguous().pointer
    parallelFor(x.count / max(width, 1), grain: 16) { rows in
        for row in rows { kernels.layerNormRow(input + row * width, output + row * width, width, gamma, beta, eps) }
    }
    return result
}

/// `layerNorm(x + residual)`: each row's sum is formed in the output and normalized there while
/// it is in cache, one pass over memory instead of two. `x` has the residual's shape, or batch
/// 1 against its B (a transformer's image side shared by every prompt).
public func layerNorm(_ x: Tensor, adding residual: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
    let width = residual.shape.last ?? 1
    let shared = x.rank == residual.rank && x.rank > 1 && x.shape[0] == 1 && Array(x.shape.dropFirst()) == Array(residual.shape.dropFirst())
    guard x.shape == residual.shape || shared else {
        return layerNorm(binary(x, .add, residual), weight: weight, bias: bias, eps: eps)
    }
    precondition(weight.count == width && bias.count == width,
                 "layer_norm: weight \(weight.shape) and bias \(bias.shape) for last dimension \(width)")
    let x = x.contiguous(), residual = residual.contiguous(), result = Tensor(uninitialized: residual.shape)
    let left = x.pointer, right = residual.pointer, output = result.pointer
    let xRows = x.count / max(width, 1)
    let gamma = weight.contiguous().pointer, beta = bias.contiguous().pointer
    parallelFor(residual.count / max(width, 1), grain: 16) { rows in
        for row in rows {
            let target = output + row * width
            kernels.add(left + (row % xRows) * width, right + row * width, target, width)
            kernels.layerNormRow(target, target, width, gamma, beta, eps)
        }
    }
    return result
}

/// SAM's `LayerNorm2d`: normalizes NCHW input over channels at every pixel.
public func layerNorm2d(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
    precondition(x.rank == 4, "layer_norm_2d: input \(x.shape) is not NCHW")
    let (batch, channels, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    precondition(weight.count == channels && bias.count == channels,
                 "layer_norm_2d: weight \(weight.shape) and bias \(bias.shape) for \(channels) channels")
    let x = x.contiguous(), result = Tensor(uninitialized: x.shape)
    let input = x.pointer, output = result.pointer
    let gamma = weight.contiguous().pointer, beta = bias.contiguous().pointer
    // Pixels are independent; each chunk reads every channel of `block` pixels, a few rows of
    // memory in order.
    let block = 256, blocks = (plane + block - 1) / block
    parallelFor(batch * blocks) { items in
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * block)
        defer { scratch.deallocate() }
        for item in items {
            let n = item / blocks, start = (item % blocks) * block
            let base = n * channels * plane + start
            kernels.layerNormPixels(input + base, output + base, channels, plane, min(block, plane - start),
                                    gamma, beta, eps, scratch, scratch + block)
        }
    }
    return result
}
