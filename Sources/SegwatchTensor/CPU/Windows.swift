/// SAM's `window_partition`: `[B, H, W, C]` -> `[B * windows, size, size, C]`, zero-padding H and
/// W up to multiples of `size`. Returns the padded size for `windowUnpartition`.
public func windowPartition(_ x: Tensor, size: Int) -> (windows: Tensor, padded: (h: Int, w: Int)) {
    let (batch, height, width, channels, rows, columns) = windowGrid(partitioning: x.shape, size: size)
    let (paddedH, paddedW) = (rows * size, columns * size)
    let x = x.contiguous()
    let result = Tensor(uninitialized: [batch * rows * columns, size, size, channels])
    let input = x.pointer, output = result.pointer
    parallelFor(batch * rows * columns * size) { range in
        for item in range {
            // item = ((b * rows + wy) * columns + wx) * size + line
            let line = item % size, window = item / size
            let wx = window % columns, wy = (window / columns) % rows, b = window / (columns * rows)
            let y = wy * size + line
            let target = output + item * size * channels
            guard y < height else { target.update(repeating: 0, count: size * channels); continue }
            let x0 = wx * size, valid = max(0, min(size, width - x0))
            target.update(from: input + ((b * height + y) * width + x0) * channels, count: valid * channels)
            (target + valid * channels).update(repeating: 0, count: (size - valid) * channels)
        }
    }
    return (result, (paddedH, paddedW))
}

/// SAM's `window_unpartition`: the inverse of `windowPartition`, dropping the padding.
public func windowUnpartition(_ windows: Tensor, size: Int, padded: (h: Int, w: Int), original: (h: Int, w: Int)) -> Tensor {
    let (batch, rows, columns, channels) = windowGrid(unpartitioning: windows.shape, size: size, padded: padded)
    let windows = windows.contiguous()
    let result = Tensor(uninitialized: [batch, original.h, original.w, channels])
    let input = windows.pointer, output = result.pointer
    parallelFor(batch * original.h) { range in
        for item in range {
            let b = item / original.h, y = item % original.h
            let wy = y / size, line = y % size
            for wx in 0..<columns {
                let x0 = wx * size, valid = max(0, min(size, original.w - x0))
                guard valid > 0 else { break }
                let window = (b * rows + wy) * columns + wx
                (output + (item * original.w + x0) * channels)
                    .update(from: input + (window * size + line) * size * channels, count: valid * channels)
            }
        }
    }
    return result
}

/// The window grid of `windowPartition` on a `[B, H, W, C]` input: H and W padded up to
/// multiples of `size`, checked as every backend checks them.
package func windowGrid(partitioning shape: [Int], size: Int)
    -> (batch: Int, height: Int, width: Int, channels: Int, rows: Int, columns: Int) {
    precondition(shape.count == 4 && size > 0, "window partition: input \(shape), window \(size)")
    let (height, width) = (shape[1], shape[2])
    return (shape[0], height, width, shape[3], (height + size - 1) / size, (width + size - 1) / size)
}

/// The window grid of `windowUnpartition`'s `[B * windows, size, size, C]` input on a `padded` grid.
package func windowGrid(unpartitioning shape: [Int], size: Int, padded: (h: Int, w: Int)) -> (batch: Int, rows: Int, columns: Int, channels: Int) {
    let (rows, columns) = (padded.h / size, padded.w / size)
    precondition(shape.count == 4 && shape[1] == size && shape[2] == size && rows * columns > 0 && shape[0] % (rows * columns) == 0,
                 "window unpartition: windows \(shape) for a \(padded) grid of \(size)")
    return (shape[0] / (rows * columns), rows, columns, shape[3])
}
