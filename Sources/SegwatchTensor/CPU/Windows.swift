/// SAM's `window_partition`: `[B, H, W, C]` -> `[B * windows, size, size, C]`, zero-padding H and
/// W up to multiples of `size`. Returns the padded size for `windowUnpartition`.
public func windowPartition(_ x: Tensor, size: Int) -> (windows: Tensor, padded: (h: Int, w: Int)) {
    precondition(x.rank == 4 && size > 0, "window partition: input \(x.shape), window \(size)")
    let (batch, height, width, channels) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let paddedH = (height + size - 1) / size * size, paddedW = (width + size - 1) / size * size
    let (rows, columns) = (paddedH / size, paddedW / size)
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
    let (rows, columns) = (padded.h / size, padded.w / size)
    let channels = windows.shape[3]
    precondition(windows.rank == 4 && windows.shape[1] == size && windows.shape[2] == size
                 && windows.shape[0] % (rows * columns) == 0,
                 "window unpartition: windows \(windows.shape) for a \(padded) grid of \(size)")
    let batch = windows.shape[0] / (rows * columns)
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
