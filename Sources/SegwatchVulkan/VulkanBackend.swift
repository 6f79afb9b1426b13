import CVulkan
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import SegwatchTensor

/// The Vulkan compute backend: the `Backend` ops as compute shaders on one device, recorded
/// into one command stream that is submitted when the host reads a result. Weights are
/// uploaded once into device memory; activations come from a pool of device buffers reused
/// frame after frame; staging memory is used only at the edges (uploads, downloads).
///
/// Values are `VulkanTensor`s: views (reshape of contiguous data, permute, slice, select,
/// expand) cost nothing, as on the CPU.
public struct VulkanBackend: Backend {
    public typealias Value = VulkanTensor

    let context: VulkanContext

    /// Opens device `index` of `vulkanDevices()`. With `float16Weights`, linear layers' weights
    /// are stored as float16 (`linearWeight`): half their memory and reads, the products still
    /// summed in float32; the device must have 16-bit storage buffers.
    public init(device index: Int = 0, float16Weights: Bool = false) throws(VulkanError) {
        context = try VulkanContext(index: index, float16Weights: float16Weights)
    }

    /// Whether linear layers' weights are stored as float16.
    public var float16Weights: Bool { context.float16Weights }

    /// The device the backend runs on.
    public var device: VulkanDeviceInfo { context.device.info }

    /// Work done so far: command buffers submitted, dispatches and barriers recorded.
    public var counters: (submissions: Int, dispatches: Int, barriers: Int) { context.stream.counters }

    /// Device memory held by the buffer pool (in use or idle).
    public var deviceBytes: Int { context.memory.allocatedBytes }

    // MARK: Transfers

    public func upload(_ tensor: Tensor) -> VulkanTensor {
        let tensor = tensor.contiguous()
        let result = context.allocate(tensor.shape)
        guard tensor.count > 0 else { return result }
        let bytes = tensor.count * 4
        let staging = context.staging(bytes: bytes)
        staging.allocation.mapped!.copyMemory(from: tensor.pointer, byteCount: bytes)
        context.perform { () throws(VulkanError) in
            try context.stream.copy(from: staging, to: result.buffer, bytes: bytes, holding: staging)
        }
        return result
    }

    public func download(_ value: VulkanTensor) -> Tensor {
        let value = contiguous(value)
        let result = Tensor(uninitialized: value.shape)
        guard value.count > 0 else { return result }
        let bytes = value.count * 4
        let staging = context.staging(bytes: bytes)
        context.perform { () throws(VulkanError) in
            try context.stream.copy(from: value.buffer, offset: value.offset * 4, to: staging, bytes: bytes, holding: staging)
            try context.stream.synchronize()
        }
        result.pointer.update(from: staging.allocation.mapped!.assumingMemoryBound(to: Float.self), count: value.count)
        return result
    }

    public func shape(_ value: VulkanTensor) -> [Int] { value.shape }

    // MARK: Views and layout

    public func reshape(_ x: VulkanTensor, _ shape: [Int]) -> VulkanTensor {
        precondition(shape.reduce(1, *) == x.count, "cannot reshape \(x.shape) to \(shape)")
        return contiguous(x).viewed(shape)
    }

    public func permute(_ x: VulkanTensor, _ order: [Int]) -> VulkanTensor { x.permuted(order) }
    public func slice(_ x: VulkanTensor, dim: Int, _ range: Range<Int>) -> VulkanTensor { x.sliced(dim, range) }
    public func select(_ x: VulkanTensor, dim: Int, _ index: Int) -> VulkanTensor { x.selected(dim, index) }
    public func expand(_ x: VulkanTensor, _ shape: [Int]) -> VulkanTensor { x.expanded(shape) }

    public func contiguous(_ x: VulkanTensor) -> VulkanTensor {
        if x.isContiguous { return x }
        let result = context.allocate(x.shape)
        copy(x, into: result)
        return result
    }

    public func concat(_ values: [VulkanTensor], dim: Int) -> VulkanTensor {
        precondition(!values.isEmpty, "concat of no tensors")
        var shape = values[0].shape
        for t in values.dropFirst() {
            precondition(t.rank == shape.count && (0..<t.rank).allSatisfy { $0 == dim || t.shape[$0] == shape[$0] },
                         "concat: \(t.shape) does not match \(values[0].shape) outside dimension \(dim)")
        }
        shape[dim] = values.reduce(0) { $0 + $1.shape[dim] }
        let result = context.allocate(shape)
        var start = 0
        for t in values {
            copy(t, into: result.sliced(dim, start..<start + t.shape[dim]))
            start += t.shape[dim]
        }
        return result
    }

    public func pad(_ x: VulkanTensor, _ padding: [(before: Int, after: Int)], value: Float) -> VulkanTensor {
        precondition(padding.count == x.rank && padding.allSatisfy { $0.before >= 0 && $0.after >= 0 },
                     "pad: \(padding) for a tensor of rank \(x.rank)")
        let shape = (0..<x.rank).map { x.shape[$0] + padding[$0].before + padding[$0].after }
        let result = context.allocate(shape)
        fill(result, value)
        let offset = zip(padding, result.strides).reduce(0) { $0 + $1.0.before * $1.1 }
        copy(x, into: VulkanTensor(shape: x.shape, strides: result.strides, offset: offset, buffer: result.buffer))
        return result
    }

    public func windowPartition(_ x: VulkanTensor, size: Int) -> (windows: VulkanTensor, padded: (h: Int, w: Int)) {
        let (batch, height, width, channels, rows, columns) = windowGrid(partitioning: x.shape, size: size)
        let (paddedH, paddedW) = (rows * size, columns * size)
        let padded = (paddedH, paddedW) == (height, width) ? x
            : pad(x, [(0, 0), (0, paddedH - height), (0, paddedW - width), (0, 0)], value: 0)
        // [B, rows, size, columns, size, C] -> [B, rows, columns, size, size, C]
        let s = padded.strides
        let view = VulkanTensor(shape: [batch, rows, columns, size, size, channels],
                                strides: [s[0], size * s[1], size * s[2], s[1], s[2], s[3]], offset: padded.offset, buffer: padded.buffer)
        let result = context.allocate([batch * rows * columns, size, size, channels])
        copy(view, into: result.viewed([batch, rows, columns, size, size, channels]))
        return (result, (paddedH, paddedW))
    }

    public func windowUnpartition(_ windows: VulkanTensor, size: Int, padded: (h: Int, w: Int), original: (h: Int, w: Int)) -> VulkanTensor {
        let (batch, rows, columns, channels) = windowGrid(unpartitioning: windows.shape, size: size, padded: padded)
        // [B, rows, columns, size, size, C] -> [B, rows, size, columns, size, C], then cropped.
        let grid = contiguous(windows).viewed([batch, rows, columns, size, size, channels]).permuted([0, 1, 3, 2, 4, 5])
        let whole = context.allocate([batch, padded.h, padded.w, channels])
        copy(grid, into: whole.viewed([batch, rows, size, columns, size, channels]))
        if (padded.h, padded.w) == (original.h, original.w) { return whole }
        return contiguous(whole.sliced(1, 0..<original.h).sliced(2, 0..<original.w))
    }

    public func concurrently(_ count: Int, _ body: @Sendable (Int) -> Void) {
        // One queue: items are recorded one after another; the device overlaps what is independent.
        for item in 0..<count { body(item) }
    }

    public var concurrentItems: Int { 1 }

    public func synchronize() {
        context.perform { () throws(VulkanError) in try context.stream.synchronize() }
    }

    public func runOnHost<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T { try body() }

    // MARK: Kernel plumbing

    /// `target[i] = source[i]` over two strided views of one shape.
    func copy(_ source: VulkanTensor, into target: VulkanTensor) {
        precondition(source.shape == target.shape, "copy: \(source.shape) into \(target.shape)")
        guard source.count > 0 else { return }
        guard let layout = collapse(source.shape, [source.strides, target.strides]) else {
            preconditionFailure("copy: \(source.shape) with strides \(source.strides) has more than 6 dimensions that do not merge")
        }
        run(.copy, groups: elementGroups(source.count), reads: [source], writes: [target]) { p in
            p.address(source)
            p.address(target)
            p.uint(source.count)
            for size in layout.shape { p.uint(size) }
            for stride in layout.strides[0] { p.int(stride) }
            for stride in layout.strides[1] { p.int(stride) }
        }
    }

    func fill(_ target: VulkanTensor, _ value: Float) {
        precondition(target.isContiguous, "fill: a strided view")
        guard target.count > 0 else { return }
        run(.fill, groups: elementGroups(target.count), reads: [], writes: [target]) { p in
            p.address(target)
            p.uint(target.count)
            p.float(value)
        }
    }

    /// Records one dispatch of `shader`, its push constants written by `parameters`.
    func run(_ shader: Shader, _ constants: [UInt32] = [], groups: (Int, Int, Int), reads: [VulkanTensor?], writes: [VulkanTensor],
             _ parameters: (inout PushConstants) -> Void) {
        // Float16 weights are made by tohalf and read by the products alone (their B operand).
        precondition(shader.needs16BitStorage || !(reads + writes).contains { $0?.half == true }, "\(shader): a float16 operand")
        var push = PushConstants()
        parameters(&push)
        let limits = context.device.info.maxWorkgroupCount
        precondition(groups.0 <= Int(limits[0]) && groups.1 <= Int(limits[1]) && groups.2 <= Int(limits[2]),
                     "\(shader): \(groups) workgroups, over the device's \(limits)")
        context.perform { () throws(VulkanError) in
            let pipeline = try context.kernels.pipeline(shader, constants)
            context.stream.dispatch(pipeline, layout: context.kernels.layout, push, groups: groups,
                                    reads: reads.compactMap { $0?.buffer }, writes: writes.map(\.buffer))
            if context.synchronous { try context.stream.synchronize() }
        }
    }

    /// Workgroups of 256 for `count` elements, at most 65535 (the kernels loop over the rest).
    func elementGroups(_ count: Int) -> (Int, Int, Int) {
        (min(max((count + 255) / 256, 1), 65535), 1, 1)
    }
}

/// One opened device with everything the backend keeps on it.
final class VulkanContext: @unchecked Sendable {
    let device: LogicalDevice
    let kernels: Kernels
    let stream: CommandStream
    /// Device-local buffers: weights and activations.
    let memory: BufferPool
    /// Host-visible buffers for uploads and downloads.
    let hostMemory: BufferPool
    /// Every dispatch waited for (`SEGWATCH_VULKAN_SYNC=1`): slow, but `--profile` then times
    /// each op's execution rather than its recording.
    let synchronous = ProcessInfo.processInfo.environment["SEGWATCH_VULKAN_SYNC"] == "1"
    private let lock = Mutex(())
    /// Per-table results the host computes once (interpolation taps, relative-position tables).
    private var cached: [String: VulkanTensor] = [:]
    let float16Weights: Bool

    init(index: Int, float16Weights: Bool) throws(VulkanError) {
        self.float16Weights = float16Weights
        device = try LogicalDevice(index: index, float16Storage: float16Weights)
        kernels = try Kernels(device: device)
        stream = try CommandStream(device: device)
        memory = BufferPool(device: device, host: false)
        hostMemory = BufferPool(device: device, host: true)
    }

    /// A new contiguous tensor of `shape`, its contents for a kernel to write.
    func allocate(_ shape: [Int]) -> VulkanTensor {
        let count = shape.reduce(1, *)
        precondition(count >= 0, "negative dimension in \(shape)")
        return VulkanTensor(shape: shape, buffer: buffer(bytes: count * 4, from: memory))
    }

    /// A new contiguous float16 tensor of `shape`, for a kernel to write.
    func allocateHalf(_ shape: [Int]) -> VulkanTensor {
        VulkanTensor(shape: shape, buffer: buffer(bytes: shape.reduce(1, *) * 2, from: memory), half: true)
    }

    func staging(bytes: Int) -> DeviceBuffer { buffer(bytes: bytes, from: hostMemory) }

    /// A pool's buffer; when the device is full, after giving back every idle buffer (once the
    /// recorded work that may name them is done).
    private func buffer(bytes: Int, from pool: BufferPool) -> DeviceBuffer {
        let limit = Int(device.info.maxAllocationBytes)
        if limit > 0, BufferPool.sizeClass(bytes) > limit {
            fail(.overLimit(device: device.info.name, what: "a tensor of \(bytes) bytes", requested: bytes, limit: limit))
        }
        do {
            return try pool.buffer(bytes: bytes)
        } catch {
            return perform { () throws(VulkanError) in
                try stream.synchronize {
                    memory.trim()
                    hostMemory.trim()
                }
                return try pool.buffer(bytes: bytes)
            }
        }
    }

    /// A value the host computes once per key and keeps on the device.
    func cachedValue(_ key: String, _ make: () -> VulkanTensor) -> VulkanTensor {
        if let value = lock.withLock({ _ in cached[key] }) { return value }
        let value = make()
        lock.withLock { _ in cached[key] = value }
        return value
    }

    /// Runs device work whose failure the `Backend` ops cannot report (they do not throw): a
    /// lost device or exhausted memory stops the process with the device's name and the call.
    @discardableResult
    func perform<T>(_ body: () throws(VulkanError) -> T) -> T {
        do {
            return try body()
        } catch {
            fail(error)
        }
    }

    func fail(_ error: VulkanError) -> Never {
        fatalError("\(error) on '\(device.info.name)'")
    }
}
