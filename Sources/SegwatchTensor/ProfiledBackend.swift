import Dispatch
import Glibc
import Synchronization

/// A backend that runs another and adds up the time of each op, for finding where a model
/// spends its time (`segwatch bench sam --profile`). On the CPU every op is synchronous, so
/// an op's wall time is its cost; inside `concurrently` each thread's ops count, so the
/// totals are thread time. The products (linear, matmul, convolutions, attention) also count
/// their floating-point operations (two per multiply-add), for their GFLOP/s against the
/// machine's peak. With `SEGWATCH_PROFILE_SHAPES` set, products, copies, softmaxes and binary
/// ops are told apart by their operands' shapes.
public struct ProfiledBackend<Base: Backend>: Backend {
    public typealias Value = Base.Value
    public let base: Base
    private let totals = Totals()

    private let byShape = getenv("SEGWATCH_PROFILE_SHAPES") != nil

    public init(_ base: Base) { self.base = base }

    /// `op`, followed by the operands' shapes when profiling by shape.
    private func key(_ op: String, _ operands: Value...) -> String {
        byShape ? op + " " + operands.map { "\(base.shape($0))" }.joined(separator: " x ") : op
    }

    /// Milliseconds, calls and floating-point operations (0 for ops that are not products) per
    /// op, most expensive first.
    public func report() -> [(op: String, milliseconds: Double, calls: Int, flops: Double)] {
        totals.entries.withLock { entries in
            entries.map { ($0.key, $0.value.nanoseconds / 1e6, $0.value.calls, $0.value.flops) }.sorted { $0.1 > $1.1 }
        }
    }

    public func reset() { totals.entries.withLock { $0 = [:] } }

    private final class Totals: Sendable {
        let entries = Mutex<[String: (nanoseconds: Double, calls: Int, flops: Double)]>([:])
    }

    /// `body`, its time added to `op`'s, and its floating-point operations: `flops` of its result.
    @inline(__always)
    private func timed<T>(_ op: String, flops: (T) -> Double = { _ in 0 }, _ body: () -> T) -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        let result = body()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start)
        let flops = flops(result)
        totals.entries.withLock { entries in
            let old = entries[op] ?? (0, 0, 0)
            entries[op] = (old.nanoseconds + elapsed, old.calls + 1, old.flops + flops)
        }
        return result
    }

    private func count(_ value: Value) -> Double { Double(base.shape(value).reduce(1, *)) }

    public func upload(_ tensor: Tensor) -> Value { base.upload(tensor) }
    public func download(_ value: Value) -> Tensor { timed("download") { base.download(value) } }
    public func shape(_ value: Value) -> [Int] { base.shape(value) }

    public func reshape(_ x: Value, _ shape: [Int]) -> Value { timed("reshape") { base.reshape(x, shape) } }
    public func permute(_ x: Value, _ order: [Int]) -> Value { base.permute(x, order) }
    public func slice(_ x: Value, dim: Int, _ range: Range<Int>) -> Value { base.slice(x, dim: dim, range) }
    public func select(_ x: Value, dim: Int, _ index: Int) -> Value { base.select(x, dim: dim, index) }
    public func expand(_ x: Value, _ shape: [Int]) -> Value { base.expand(x, shape) }
    public func contiguous(_ x: Value) -> Value { timed(key("contiguous", x)) { base.contiguous(x) } }
    public func concat(_ values: [Value], dim: Int) -> Value { timed("concat") { base.concat(values, dim: dim) } }
    public func pad(_ x: Value, _ padding: [(before: Int, after: Int)], value: Float) -> Value {
        timed("pad") { base.pad(x, padding, value: value) }
    }
    public func windowPartition(_ x: Value, size: Int) -> (windows: Value, padded: (h: Int, w: Int)) {
        timed("windowPartition") { base.windowPartition(x, size: size) }
    }
    public func windowUnpartition(_ windows: Value, size: Int, padded: (h: Int, w: Int), original: (h: Int, w: Int)) -> Value {
        timed("windowUnpartition") { base.windowUnpartition(windows, size: size, padded: padded, original: original) }
    }

    public func matmul(_ a: Value, _ b: Value) -> Value {
        // Every output sums the inner dimension, a's last.
        timed(key("matmul", a, b), flops: { 2 * count($0) * Double(base.shape(a).last ?? 0) }) { base.matmul(a, b) }
    }
    public func linearWeight(_ weight: Value) -> Value { base.linearWeight(weight) }
    public func linear(_ x: Value, weight: Value, bias: Value?, adding residual: Value?) -> Value {
        timed(key("linear", x, weight), flops: { _ in 2 * count(x) * Double(base.shape(weight)[0]) }) {
            base.linear(x, weight: weight, bias: bias, adding: residual)
        }
    }
    public func linear(_ x: Value, weight: Value, bias: Value?, activation: Activation) -> Value {
        timed(key("linear +\(activation)", x, weight), flops: { _ in 2 * count(x) * Double(base.shape(weight)[0]) }) {
            base.linear(x, weight: weight, bias: bias, activation: activation)
        }
    }
    public func conv2d(_ x: Value, weight: Value, bias: Value?, _ options: Conv2dOptions) -> Value {
        let w = base.shape(weight)
        let kind = options.groups > 1 && options.groups == w[0] ? "depthwise" : w[2] == 1 && w[3] == 1 ? "pointwise" : "im2col"
        let activation = options.activation.map { " +\($0)" } ?? ""
        // Each output sums its group's input channels over the kernel: weight's [out, in/groups, kh, kw].
        let x0 = base.shape(x), outputs = Double(x0[0] * w[0]) * Double(convolvedSize(x0[2], w[2], options.stride.y, options.padding.y, options.dilation.y))
            * Double(convolvedSize(x0[3], w[3], options.stride.x, options.padding.x, options.dilation.x))
        return timed("conv2d \(kind) \(w[2])x\(w[3])/\(options.stride.y)\(activation)", flops: { _ in 2 * outputs * Double(w[1] * w[2] * w[3]) }) {
            base.conv2d(x, weight: weight, bias: bias, options)
        }
    }
    public func depthwiseConv2dChannelsLast(_ x: Value, weight: Value, bias: Value?, _ options: Conv2dOptions) -> Value {
        let w = base.shape(weight)
        return timed("conv2d depthwise channels-last \(w[2])x\(w[3])/\(options.stride.y)") {
            base.depthwiseConv2dChannelsLast(x, weight: weight, bias: bias, options)
        }
    }
    public func convTranspose2d(_ x: Value, weight: Value, bias: Value?, stride: Int) -> Value {
        // Every input value meets every weight of its channel: weight's [in, out, kh, kw].
        let w = base.shape(weight)
        return timed("convTranspose2d", flops: { _ in 2 * count(x) * Double(w[1] * w[2] * w[3]) }) {
            base.convTranspose2d(x, weight: weight, bias: bias, stride: stride)
        }
    }

    public func layerNorm(_ x: Value, weight: Value, bias: Value, eps: Float) -> Value {
        timed("layerNorm") { base.layerNorm(x, weight: weight, bias: bias, eps: eps) }
    }
    public func layerNorm(_ x: Value, adding residual: Value, weight: Value, bias: Value, eps: Float) -> Value {
        timed("layerNorm +add") { base.layerNorm(x, adding: residual, weight: weight, bias: bias, eps: eps) }
    }
    public func layerNorm2d(_ x: Value, weight: Value, bias: Value, eps: Float) -> Value {
        timed("layerNorm2d") { base.layerNorm2d(x, weight: weight, bias: bias, eps: eps) }
    }
    public func activate(_ x: Value, _ activation: Activation) -> Value { timed("activate \(activation)") { base.activate(x, activation) } }
    public func softmax(_ x: Value) -> Value { timed(key("softmax", x)) { base.softmax(x) } }
    public func attention(q: Value, k: Value, v: Value, _ options: AttentionOptions<Value>) -> Value {
        // Scores q kᵀ, then their product with v: [B, H, Nq, Nk] times (d + dv).
        let (q0, k0, v0) = (base.shape(q), base.shape(k), base.shape(v))
        let flops = 2 * Double(q0[0] * q0[1] * q0[2] * k0[2]) * Double(q0[3] + v0[3])
        return timed("attention", flops: { _ in flops }) { base.attention(q: q, k: k, v: v, options) }
    }
    public func relativePositionBias(q: Value, tableH: Value, tableW: Value,
                                     queryGrid: (h: Int, w: Int), keyGrid: (h: Int, w: Int)) -> RelativePositionBias<Value> {
        timed("relativePositionBias") { base.relativePositionBias(q: q, tableH: tableH, tableW: tableW, queryGrid: queryGrid, keyGrid: keyGrid) }
    }

    public func interpolate(_ x: Value, size: (h: Int, w: Int), mode: InterpolationMode) -> Value {
        timed("interpolate") { base.interpolate(x, size: size, mode: mode) }
    }
    public func binary(_ a: Value, _ operation: BinaryOperation, _ b: Value) -> Value { timed(key("binary", a, b)) { base.binary(a, operation, b) } }
    public func affine(_ x: Value, scale: Float, shift: Float) -> Value { timed("affine") { base.affine(x, scale: scale, shift: shift) } }
    public func mean(_ x: Value, dim: Int, keepDim: Bool) -> Value { timed("mean") { base.mean(x, dim: dim, keepDim: keepDim) } }
    public func argmax(_ x: Value) -> [Int] { timed("argmax") { base.argmax(x) } }
    public func maskBits(_ x: Value, threshold: Float, counting thresholds: [Float]) -> MaskBits {
        timed("maskBits") { base.maskBits(x, threshold: threshold, counting: thresholds) }
    }
    public var isDevice: Bool { base.isDevice }
    public var maximumValueBytes: Int { base.maximumValueBytes }
    public func concurrently(_ count: Int, _ body: @Sendable (Int) -> Void) { base.concurrently(count, body) }
    public var concurrentItems: Int { base.concurrentItems }
    public func synchronize() { timed("synchronize") { base.synchronize() } }
    public func runOnHost<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T { try base.runOnHost(body) }
}

/// Outputs along one axis of a convolution.
private func convolvedSize(_ size: Int, _ kernel: Int, _ stride: Int, _ padding: Int, _ dilation: Int) -> Int {
    (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
}
