import SegwatchTensor
import SegwatchVulkan

/// The backend a process runs its models on, chosen at run time (`--backend`,
/// `SEGWATCH_BACKEND`): the CPU backend, or the Vulkan backend on a device. Model code is
/// generic over `Backend`; the service and the command line hold this one type whichever was
/// chosen, so that the choice is a flag rather than a second build of everything above.
///
/// Its values are host tensors on the CPU and device tensors on Vulkan, never mixed: every
/// value comes from this backend's own ops. Host-side work (`runOnHost`: mask
/// post-processing, pooling) runs under `engine` on either.
public struct ComputeBackend: Backend {
    public enum Value: Sendable {
        case host(Tensor)
        case device(VulkanTensor)
    }

    public enum Kind: Sendable {
        case cpu(CPUBackend)
        case vulkan(VulkanBackend)
    }

    public let kind: Kind
    /// The CPU engine: the CPU backend's, and on Vulkan the one host-side work runs under.
    public let engine: CPUEngine

    public init(cpu engine: CPUEngine, multipliesInBFloat16: Bool = false) {
        kind = .cpu(CPUBackend(engine: engine, multipliesInBFloat16: multipliesInBFloat16))
        self.engine = engine
    }

    public init(vulkan: VulkanBackend, engine: CPUEngine) {
        kind = .vulkan(vulkan)
        self.engine = engine
    }

    /// `cpu`, or `vulkan` with the device's name, for logs and reports.
    public var name: String {
        switch kind {
        case .cpu: "cpu"
        case .vulkan(let backend): "vulkan (\(backend.device.name))"
        }
    }

    public var isVulkan: Bool {
        if case .vulkan = kind { return true }
        return false
    }

    private func map(_ x: Value, cpu: (CPUBackend, Tensor) -> Tensor, vulkan: (VulkanBackend, VulkanTensor) -> VulkanTensor) -> Value {
        switch kind {
        case .cpu(let backend): .host(cpu(backend, x.host))
        case .vulkan(let backend): .device(vulkan(backend, x.device))
        }
    }

    public func upload(_ tensor: Tensor) -> Value {
        switch kind {
        case .cpu(let backend): .host(backend.upload(tensor))
        case .vulkan(let backend): .device(backend.upload(tensor))
        }
    }

    public func download(_ value: Value) -> Tensor {
        switch kind {
        case .cpu(let backend): backend.download(value.host)
        case .vulkan(let backend): backend.download(value.device)
        }
    }

    public func shape(_ value: Value) -> [Int] {
        switch value {
        case .host(let t): t.shape
        case .device(let t): t.shape
        }
    }

    public func reshape(_ x: Value, _ shape: [Int]) -> Value {
        map(x) { $0.reshape($1, shape) } vulkan: { $0.reshape($1, shape) }
    }
    public func permute(_ x: Value, _ order: [Int]) -> Value {
        map(x) { $0.permute($1, order) } vulkan: { $0.permute($1, order) }
    }
    public func slice(_ x: Value, dim: Int, _ range: Range<Int>) -> Value {
        map(x) { $0.slice($1, dim: dim, range) } vulkan: { $0.slice($1, dim: dim, range) }
    }
    public func select(_ x: Value, dim: Int, _ index: Int) -> Value {
        map(x) { $0.select($1, dim: dim, index) } vulkan: { $0.select($1, dim: dim, index) }
    }
    public func expand(_ x: Value, _ shape: [Int]) -> Value {
        map(x) { $0.expand($1, shape) } vulkan: { $0.expand($1, shape) }
    }
    public func contiguous(_ x: Value) -> Value {
        map(x) { $0.contiguous($1) } vulkan: { $0.contiguous($1) }
    }
    public func concat(_ values: [Value], dim: Int) -> Value {
        switch kind {
        case .cpu(let backend): .host(backend.concat(values.map(\.host), dim: dim))
        case .vulkan(let backend): .device(backend.concat(values.map(\.device), dim: dim))
        }
    }
    public func pad(_ x: Value, _ padding: [(before: Int, after: Int)], value: Float) -> Value {
        map(x) { $0.pad($1, padding, value: value) } vulkan: { $0.pad($1, padding, value: value) }
    }
    public func windowPartition(_ x: Value, size: Int) -> (windows: Value, padded: (h: Int, w: Int)) {
        switch kind {
        case .cpu(let backend):
            let (windows, padded) = backend.windowPartition(x.host, size: size)
            return (.host(windows), padded)
        case .vulkan(let backend):
            let (windows, padded) = backend.windowPartition(x.device, size: size)
            return (.device(windows), padded)
        }
    }
    public func windowUnpartition(_ windows: Value, size: Int, padded: (h: Int, w: Int), original: (h: Int, w: Int)) -> Value {
        map(windows) { $0.windowUnpartition($1, size: size, padded: padded, original: original) }
            vulkan: { $0.windowUnpartition($1, size: size, padded: padded, original: original) }
    }

    public func matmul(_ a: Value, _ b: Value) -> Value {
        map(a) { $0.matmul($1, b.host) } vulkan: { $0.matmul($1, b.device) }
    }
    public func linear(_ x: Value, weight: Value, bias: Value?, adding residual: Value?) -> Value {
        map(x) { $0.linear($1, weight: weight.host, bias: bias?.host, adding: residual?.host) }
            vulkan: { $0.linear($1, weight: weight.device, bias: bias?.device, adding: residual?.device) }
    }
    public func linear(_ x: Value, weight: Value, bias: Value?, activation: Activation) -> Value {
        map(x) { $0.linear($1, weight: weight.host, bias: bias?.host, activation: activation) }
            vulkan: { $0.linear($1, weight: weight.device, bias: bias?.device, activation: activation) }
    }
    public func linearWeight(_ weight: Value) -> Value {
        map(weight) { $0.linearWeight($1) } vulkan: { $0.linearWeight($1) }
    }
    public func conv2d(_ x: Value, weight: Value, bias: Value?, _ options: Conv2dOptions) -> Value {
        map(x) { $0.conv2d($1, weight: weight.host, bias: bias?.host, options) }
            vulkan: { $0.conv2d($1, weight: weight.device, bias: bias?.device, options) }
    }
    public func depthwiseConv2dChannelsLast(_ x: Value, weight: Value, bias: Value?, _ options: Conv2dOptions) -> Value {
        map(x) { $0.depthwiseConv2dChannelsLast($1, weight: weight.host, bias: bias?.host, options) }
            vulkan: { $0.depthwiseConv2dChannelsLast($1, weight: weight.device, bias: bias?.device, options) }
    }
    public func convTranspose2d(_ x: Value, weight: Value, bias: Value?, stride: Int) -> Value {
        map(x) { $0.convTranspose2d($1, weight: weight.host, bias: bias?.host, stride: stride) }
            vulkan: { $0.convTranspose2d($1, weight: weight.device, bias: bias?.device, stride: stride) }
    }

    public func layerNorm(_ x: Value, weight: Value, bias: Value, eps: Float) -> Value {
        map(x) { $0.layerNorm($1, weight: weight.host, bias: bias.host, eps: eps) }
            vulkan: { $0.layerNorm($1, weight: weight.device, bias: bias.device, eps: eps) }
    }
    public func layerNorm(_ x: Value, adding residual: Value, weight: Value, bias: Value, eps: Float) -> Value {
        map(x) { $0.layerNorm($1, adding: residual.host, weight: weight.host, bias: bias.host, eps: eps) }
            vulkan: { $0.layerNorm($1, adding: residual.device, weight: weight.device, bias: bias.device, eps: eps) }
    }
    public func layerNorm2d(_ x: Value, weight: Value, bias: Value, eps: Float) -> Value {
        map(x) { $0.layerNorm2d($1, weight: weight.host, bias: bias.host, eps: eps) }
            vulkan: { $0.layerNorm2d($1, weight: weight.device, bias: bias.device, eps: eps) }
    }
    public func activate(_ x: Value, _ activation: Activation) -> Value {
        map(x) { $0.activate($1, activation) } vulkan: { $0.activate($1, activation) }
    }
    public func softmax(_ x: Value) -> Value {
        map(x) { $0.softmax($1) } vulkan: { $0.softmax($1) }
    }
    public func attention(q: Value, k: Value, v: Value, _ options: AttentionOptions<Value>) -> Value {
        map(q) { $0.attention(q: $1, k: k.host, v: v.host, options.map(\.host)) }
            vulkan: { $0.attention(q: $1, k: k.device, v: v.device, options.map(\.device)) }
    }
    public func relativePositionBias(q: Value, tableH: Value, tableW: Value,
                                     queryGrid: (h: Int, w: Int), keyGrid: (h: Int, w: Int)) -> RelativePositionBias<Value> {
        switch kind {
        case .cpu(let backend):
            let terms = backend.relativePositionBias(q: q.host, tableH: tableH.host, tableW: tableW.host, queryGrid: queryGrid, keyGrid: keyGrid)
            return RelativePositionBias(height: .host(terms.height), width: .host(terms.width), keyGrid: terms.keyGrid)
        case .vulkan(let backend):
            let terms = backend.relativePositionBias(q: q.device, tableH: tableH.device, tableW: tableW.device, queryGrid: queryGrid,
                                                     keyGrid: keyGrid)
            return RelativePositionBias(height: .device(terms.height), width: .device(terms.width), keyGrid: terms.keyGrid)
        }
    }

    public func interpolate(_ x: Value, size: (h: Int, w: Int), mode: InterpolationMode) -> Value {
        map(x) { $0.interpolate($1, size: size, mode: mode) } vulkan: { $0.interpolate($1, size: size, mode: mode) }
    }
    public func binary(_ a: Value, _ operation: BinaryOperation, _ b: Value) -> Value {
        map(a) { $0.binary($1, operation, b.host) } vulkan: { $0.binary($1, operation, b.device) }
    }
    public func affine(_ x: Value, scale: Float, shift: Float) -> Value {
        map(x) { $0.affine($1, scale: scale, shift: shift) } vulkan: { $0.affine($1, scale: scale, shift: shift) }
    }
    public func mean(_ x: Value, dim: Int, keepDim: Bool) -> Value {
        map(x) { $0.mean($1, dim: dim, keepDim: keepDim) } vulkan: { $0.mean($1, dim: dim, keepDim: keepDim) }
    }
    public func argmax(_ x: Value) -> [Int] {
        switch kind {
        case .cpu(let backend): backend.argmax(x.host)
        case .vulkan(let backend): backend.argmax(x.device)
        }
    }

    public func maskBits(_ x: Value, threshold: Float, counting thresholds: [Float]) -> MaskBits {
        switch kind {
        case .cpu(let backend): backend.maskBits(x.host, threshold: threshold, counting: thresholds)
        case .vulkan(let backend): backend.maskBits(x.device, threshold: threshold, counting: thresholds)
        }
    }
    public var isDevice: Bool { isVulkan }
    public var maximumValueBytes: Int {
        switch kind {
        case .cpu(let backend): backend.maximumValueBytes
        case .vulkan(let backend): backend.maximumValueBytes
        }
    }

    public func concurrently(_ count: Int, _ body: @Sendable (Int) -> Void) {
        switch kind {
        case .cpu(let backend): backend.concurrently(count, body)
        case .vulkan(let backend): backend.concurrently(count, body)
        }
    }

    public var concurrentItems: Int {
        switch kind {
        case .cpu(let backend): backend.concurrentItems
        case .vulkan(let backend): backend.concurrentItems
        }
    }

    public func synchronize() {
        if case .vulkan(let backend) = kind { backend.synchronize() }
    }

    public func runOnHost<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T { try engine.run(body) }
}

extension ComputeBackend.Value {
    /// The host tensor of a CPU value (a device value here is a bug: values never cross backends).
    var host: Tensor {
        guard case .host(let tensor) = self else { preconditionFailure("a Vulkan tensor given to the CPU backend") }
        return tensor
    }

    var device: VulkanTensor {
        guard case .device(let tensor) = self else { preconditionFailure("a host tensor given to the Vulkan backend") }
        return tensor
    }
}
