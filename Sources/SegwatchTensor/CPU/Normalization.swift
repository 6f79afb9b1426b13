/// `torch.nn.functional.layer_norm` over the last dimension.
public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
    let width = x.shape.last ?? 1
    precondition(weight.count == width && bias.count == width,
                 "layer_norm: weight \(weight.shape) and bias \(bias.shape) for last dimension \(width)")
    let x = x.contiguous(), result = Tensor(uninitialized: x.shape)
    let input = x.pointer, output = result.pointer
    let gamma = weight.contiguous().pointer, beta = bias.contiguous().pointer
    parallelFor(x.count / max(width, 1), grain: 16) { rows in
        for row in rows {
            let source = input + row * width, target = output + row * width
            var sum: Float = 0
            for i in 0..<width { sum += source[i] }
            let mean = sum / Float(width)
            var squares: Float = 0
            for i in 0..<width {
                let d = source[i] - mean
                squares += d * d
            }
            let inverse = 1 / (squares / Float(width) + eps).squareRoot()
            for i in 0..<width { target[i] = (source[i] - mean) * inverse * gamma[i] + beta[i] }
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
    // Pixels are independent; each chunk walks the channels with a row of per-pixel sums, so
    // every pass reads memory in order.
    let block = 256, blocks = (plane + block - 1) / block
    parallelFor(batch * blocks) { items in
        var mean = [Float](repeating: 0, count: block), inverse = [Float](repeating: 0, count: block)
        for item in items {
            let n = item / blocks, start = (item % blocks) * block
            let size = min(block, plane - start)
            let base = n * channels * plane + start
            for i in 0..<size { mean[i] = 0; inverse[i] = 0 }
            for c in 0..<channels {
                let row = input + base + c * plane
                for i in 0..<size { mean[i] += row[i] }
            }
            for i in 0..<size { mean[i] /= Float(channels) }
            for c in 0..<channels {
                let row = input + base + c * plane
                for i in 0..<size {
                    let d = row[i] - mean[i]
                    inverse[i] += d * d
                }
            }
            for i in 0..<size { inverse[i] = 1 / (inverse[i] / Float(channels) + eps).squareRoot() }
            for c in 0..<channels {
                let row = input + base + c * plane, target = output + base + c * plane
                let g = gamma[c], b = beta[c]
                for i in 0..<size { target[i] = (row[i] - mean[i]) * inverse[i] * g + b }
            }
        }
    }
    return result
}
