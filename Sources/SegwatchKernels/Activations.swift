/// Pointwise nonlinearities with torch's definitions, `output[i] = f(input[i])` for `count`
/// elements. `output` may be `input`.
///
/// Each kernel spells out its loop: written as a closure over a shared loop, the optimizer
/// kept the closure out of line and called it for every eight elements.

/// `nn.GELU()`: `x/2 * (1 + erf(x/sqrt 2))`.
public func gelu(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    while i + Vector.scalarCount <= count {
        output.store(gelu(input.vector(at: i)), at: i)
        i += Vector.scalarCount
    }
    if i < count { output.store(gelu(input.vector(at: i, lanes: count - i)), at: i, lanes: count - i) }
}

@inline(__always) func gelu(_ v: Vector) -> Vector { 0.5 * v * (1 + erf(v * 0.707_106_781_186_547_52)) }

/// `nn.GELU(approximate="tanh")`: `x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, with
/// `1 + tanh(y) = 2 - 2 / (e^2y + 1)`.
public func geluTanh(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    while i + Vector.scalarCount <= count {
        output.store(geluTanh(input.vector(at: i)), at: i)
        i += Vector.scalarCount
    }
    if i < count { output.store(geluTanh(input.vector(at: i, lanes: count - i)), at: i, lanes: count - i) }
}

@inline(__always) func geluTanh(_ v: Vector) -> Vector {
    let y = 0.797_884_560_802_865_36 * muladd(0.044_715 * v * v, v, v)
    return 0.5 * v * (2 - 2 / (exp(2 * y) + 1))
}

/// CLIP's `x * sigmoid(1.702 x)`.
public func quickGelu(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    while i + Vector.scalarCount <= count {
        output.store(quickGelu(input.vector(at: i)), at: i)
        i += Vector.scalarCount
    }
    if i < count { output.store(quickGelu(input.vector(at: i, lanes: count - i)), at: i, lanes: count - i) }
}

@inline(__always) func quickGelu(_ v: Vector) -> Vector { v / (1 + exp(-1.702 * v)) }

public func relu(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    while i + Vector.scalarCount <= count {
        output.store(relu(input.vector(at: i)), at: i)
        i += Vector.scalarCount
    }
    if i < count { output.store(relu(input.vector(at: i, lanes: count - i)), at: i, lanes: count - i) }
}

/// A select, not `max`, so that NaN stays NaN as torch.relu keeps it.
@inline(__always) func relu(_ v: Vector) -> Vector { v.replacing(with: 0, where: v .< 0) }

public func sigmoid(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    while i + Vector.scalarCount <= count {
        output.store(sigmoid(input.vector(at: i)), at: i)
        i += Vector.scalarCount
    }
    if i < count { output.store(sigmoid(input.vector(at: i, lanes: count - i)), at: i, lanes: count - i) }
}

@inline(__always) func sigmoid(_ v: Vector) -> Vector { 1 / (1 + exp(-v)) }
