import CVulkan
import CVulkanShaders
import Synchronization

/// The compute shaders (Sources/CVulkanShaders/glsl), one per op.
enum Shader: String, CaseIterable, Sendable {
    case copy, fill, unary, binary, gemm, gemmhalf, layernorm, layernorm2d, softmax, attention, im2col, depthwise, convtranspose,
         resample, mean, argmax, maskbits, tohalf

    /// Whether the shader declares 16-bit storage (float16 weights), which a device only
    /// accepts when that feature was enabled.
    var needs16BitStorage: Bool { self == .gemmhalf || self == .tohalf }
}

/// Every kernel takes its parameters as push constants (buffer addresses first), at most the
/// 128 bytes every device allows.
let pushConstantBytes = 128

/// Compiled pipelines, one per shader and set of specialization constants (tile sizes, the
/// attention's head depth), made on first use and kept for the device's life.
final class Kernels: @unchecked Sendable {
    let device: LogicalDevice
    let layout: VkPipelineLayout
    private var modules: [Shader: VkShaderModule] = [:]
    private var pipelines: [Key: VkPipeline] = [:]
    private let lock = Mutex(())

    private struct Key: Hashable {
        let shader: Shader
        let constants: [UInt32]
    }

    init(device: LogicalDevice) throws(VulkanError) {
        self.device = device
        var range = VkPushConstantRange(stageFlags: VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue), offset: 0,
                                        size: UInt32(pushConstantBytes))
        var info = VkPipelineLayoutCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO
        var layout: VkPipelineLayout?
        let result = withUnsafePointer(to: &range) { range in
            info.pushConstantRangeCount = 1
            info.pPushConstantRanges = range
            return vkCreatePipelineLayout(device.handle, &info, nil, &layout)
        }
        try check(result, "vkCreatePipelineLayout")
        self.layout = layout!

        var count = 0
        let table = segwatch_shader_table(&count)!
        for entry in UnsafeBufferPointer(start: table, count: count) {
            guard let shader = Shader(rawValue: String(cString: entry.name)), device.float16Storage || !shader.needs16BitStorage else {
                continue
            }
            var moduleInfo = VkShaderModuleCreateInfo()
            moduleInfo.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO
            moduleInfo.codeSize = entry.size
            moduleInfo.pCode = entry.code
            var module: VkShaderModule?
            try check(vkCreateShaderModule(device.handle, &moduleInfo, nil, &module), "vkCreateShaderModule(\(shader))")
            modules[shader] = module
        }
        if let absent = Shader.allCases.first(where: { modules[$0] == nil && (device.float16Storage || !$0.needs16BitStorage) }) {
            throw .unsupported(device: device.info.name, missing: "the \(absent) shader (rebuild: make_shaders.py)")
        }
    }

    deinit {
        for pipeline in pipelines.values { vkDestroyPipeline(device.handle, pipeline, nil) }
        for module in modules.values { vkDestroyShaderModule(device.handle, module, nil) }
        vkDestroyPipelineLayout(device.handle, layout, nil)
    }

    /// The pipeline of `shader` with specialization constants `constants` (constant_id 0, 1, ...).
    func pipeline(_ shader: Shader, _ constants: [UInt32] = []) throws(VulkanError) -> VkPipeline {
        try lock.withLock { _ throws(VulkanError) in try create(Key(shader: shader, constants: constants)) }
    }

    private func create(_ key: Key) throws(VulkanError) -> VkPipeline {
        let (shader, constants) = (key.shader, key.constants)
        if let pipeline = pipelines[key] { return pipeline }
        var entries = constants.indices.map {
            VkSpecializationMapEntry(constantID: UInt32($0), offset: UInt32($0 * 4), size: 4)
        }
        var values = constants
        var pipeline: VkPipeline?
        let result = "main".withCString { entryName in
            entries.withUnsafeMutableBufferPointer { entries in
                values.withUnsafeMutableBytes { values in
                    var specialization = VkSpecializationInfo(mapEntryCount: UInt32(entries.count), pMapEntries: entries.baseAddress,
                                                              dataSize: values.count, pData: values.baseAddress)
                    return withUnsafePointer(to: &specialization) { specialization in
                        var stage = VkPipelineShaderStageCreateInfo()
                        stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
                        stage.stage = VK_SHADER_STAGE_COMPUTE_BIT
                        stage.module = modules[shader]
                        stage.pName = entryName
                        stage.pSpecializationInfo = constants.isEmpty ? nil : specialization
                        var info = VkComputePipelineCreateInfo()
                        info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
                        info.stage = stage
                        info.layout = layout
                        return vkCreateComputePipelines(device.handle, nil, 1, &info, nil, &pipeline)
                    }
                }
            }
        }
        try check(result, "vkCreateComputePipelines(\(shader), \(constants))")
        pipelines[key] = pipeline!
        return pipeline!
    }
}

/// A kernel's push constants, in the order and layout (GLSL's scalar layout) of its
/// `Parameters` block: buffer addresses first, then 32-bit values.
struct PushConstants {
    private(set) var bytes: [UInt8] = []

    private mutating func append<T>(_ value: T) {
        withUnsafeBytes(of: value) { bytes += $0 }
        precondition(bytes.count <= pushConstantBytes, "push constants over \(pushConstantBytes) bytes")
    }

    /// The address of a tensor's first element (0 for an absent one, which the kernel does not read).
    mutating func address(_ tensor: VulkanTensor?) {
        precondition(bytes.count % 8 == 0, "a buffer address after 32-bit values")
        append(tensor.map { $0.buffer.address + UInt64($0.offset * $0.elementBytes) } ?? 0)
    }

    mutating func uint(_ values: Int...) {
        for value in values {
            precondition(value >= 0 && value <= Int(UInt32.max), "\(value) does not fit a kernel's uint")
            append(UInt32(value))
        }
    }

    mutating func int(_ values: Int...) {
        for value in values {
            precondition(value >= Int(Int32.min) && value <= Int(Int32.max), "\(value) does not fit a kernel's int")
            append(Int32(value))
        }
    }

    mutating func float(_ values: Float...) {
        for value in values { append(value) }
    }
}
