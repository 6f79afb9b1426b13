#if SEGWATCH_AVX512
import CGemm
#endif

/// Softmax of one row of `width` floats, in place (`torch.softmax(x, -1)`). A row of all
/// `-infinity` (fully masked) becomes zeros rather than NaN.
public func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ width: Int) {
    let whole = width & ~(Vector.scalarCount - 1), tail = width - whole
    // Tail lanes are padded with -infinity: they change neither the maximum nor the sum.
    var largest = tail > 0 ? row.vector(at: whole, lanes: tail, padding: -.infinity) : Vector(repeating: -.infinity)
    var i = 0
    while i < whole {
        let v = row.vector(at: i)
        largest = largest.replacing(with: v, where: v .> largest)
        i += Vector.scalarCount
    }
    let top = largest.max()
    if top == -.infinity {
        row.update(repeating: 0, count: width)
        return
    }
    var sums = Vector.zero
    i = 0
    while i < whole {
        let e = exp(row.vector(at: i) - top)
        row.store(e, at: i)
        sums += e
        i += Vector.scalarCount
    }
    if tail > 0 {
        let e = exp(row.vector(at: whole, lanes: tail, padding: -.infinity) - top)
        row.store(e, at: whole, lanes: tail)
        sums += e
    }
    let inverse = 1 / sums.sum()
    i = 0
    while i < whole {
        row.store(row.vector(at: i) * inverse, at: i)
        i += Vector.scalarCount
    }
    for j in whole..<width { row[j] *= inverse }
}

/// Softmax of `rows` consecutive rows of `width` floats each, in place. Rows narrower than a
/// vector (a prompt's few tokens, one head at a time) would each take a padded vector through
/// `exp`; instead `exp` runs over whole vectors of many rows at once (each row's maximum
/// subtracted first only where a value is far from 0), and each row is scaled by its sum.
public func softmaxRows(_ data: UnsafeMutablePointer<Float>, _ rows: Int, _ width: Int) {
    guard width < Vector.scalarCount else {
        for r in 0..<rows { softmaxRow(data + r * width, width) }
        return
    }
    guard width > 0 else { return }
    #if SEGWATCH_AVX512
    // Sixteen rows at a time in C (gathers, which Swift cannot ask for); the last few here.
    let done = cgemm_softmax_narrow_avx512(data, rows, width)
    let (data, rows) = (data + done * width, rows - done)
    #endif
    let chunkRows = 128
    for first in stride(from: 0, to: rows, by: chunkRows) {
        let chunk = data + first * width, count = min(chunkRows, rows - first) * width
        let whole = count & ~(Vector.scalarCount - 1)
        // Softmax does not change when a row is shifted; the maximum is subtracted only so
        // that exp cannot overflow or every term underflow, which inside +-80 it cannot.
        var lowest = Vector(repeating: .infinity), highest = Vector(repeating: -.infinity)
        var i = 0
        while i < whole {
            let v = chunk.vector(at: i)
            lowest = lowest.replacing(with: v, where: v .< lowest)
            highest = highest.replacing(with: v, where: v .> highest)
            i += Vector.scalarCount
        }
        for j in whole..<count {
            lowest[0] = Swift.min(lowest[0], chunk[j])
            highest[0] = Swift.max(highest[0], chunk[j])
        }
        var row = chunk
        if !(lowest.min() >= -80 && highest.max() <= 80) {
            while row < chunk + count {
                var top = row[0]
                for j in 1..<width where row[j] > top { top = row[j] }
                // A fully masked row stays -infinity, and exp makes it zeros.
                if top != -.infinity { for j in 0..<width { row[j] -= top } }
                row += width
            }
        }
        i = 0
        while i < whole {
            chunk.store(exp(chunk.vector(at: i)), at: i)
            i += Vector.scalarCount
        }
        if whole < count { chunk.store(exp(chunk.vector(at: whole, lanes: count - whole)), at: whole, lanes: count - whole) }
        row = chunk
        while row < chunk + count {
            var sum: Float = 0
            for j in 0..<width { sum += row[j] }
            if sum > 0 {
                let inverse = 1 / sum
                for j in 0..<width { row[j] *= inverse }
            }
            row += width
        }
    }
}
