/// Softmax of one row of `width` floats, in place (`torch.softmax(x, -1)`). A row of all
/// `-infinity` (fully masked) becomes zeros rather than NaN.
public func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ width: Int) {
    let whole = width & ~7, tail = width - whole
    // Tail lanes are padded with -infinity: they change neither the maximum nor the sum.
    var largest = tail > 0 ? row.vector(at: whole, lanes: tail, padding: -.infinity) : Vector(repeating: -.infinity)
    var i = 0
    while i < whole {
        let v = row.vector(at: i)
        largest = largest.replacing(with: v, where: v .> largest)
        i += 8
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
        i += 8
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
        i += 8
    }
    for j in whole..<width { row[j] *= inverse }
}
