/// Elementwise arithmetic on contiguous rows: `output[i] = a[i] op b[i]` for `count` elements.
/// `output` may be `a` or `b`. Plain loops: the optimizer vectorizes them to the target's width.

public func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    for i in 0..<count { output[i] = a[i] + b[i] }
}

public func subtract(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    for i in 0..<count { output[i] = a[i] - b[i] }
}

public func multiply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    for i in 0..<count { output[i] = a[i] * b[i] }
}

public func divide(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    for i in 0..<count { output[i] = a[i] / b[i] }
}

/// `output[i] = input[i] * scale + shift`. Two roundings, as torch computes `x * s + t`.
public func affine(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int, scale: Float, shift: Float) {
    for i in 0..<count { output[i] = input[i] * scale + shift }
}
