import CVulkan

/// One opened device: its compute queue and the memory types buffers come from. Kept alive by
/// everything made from it (pools, pipelines, the command stream), so it goes last.
final class LogicalDevice: @unchecked Sendable {
    let info: VulkanDeviceInfo
    let physical: VkPhysicalDevice
    let handle: VkDevice
    let queue: VkQueue
    let queueFamily: UInt32
    /// Whether 16-bit storage buffers are enabled (float16 weights).
    let float16Storage: Bool
    /// Each memory type's properties, by index.
    private let memoryTypes: [VkMemoryPropertyFlags]

    /// Opens device `index`; with `float16Storage`, with 16-bit storage buffers enabled (an
    /// error naming the feature where the device has none).
    init(index: Int, float16Storage: Bool = false) throws(VulkanError) {
        let instance = try VulkanInstance.shared.get()
        let devices = instance.physicalDevices
        guard !devices.isEmpty else { throw .noDevices }
        guard devices.indices.contains(index) else { throw .noSuchDevice(index: index, count: devices.count) }
        let physical = devices[index]
        self.physical = physical
        let info = describe(physical, index: index)
        self.info = info
        if let missing = info.missing { throw .unsupported(device: info.name, missing: missing) }
        self.float16Storage = float16Storage
        if float16Storage && !info.float16Storage {
            throw .unsupported(device: info.name, missing: "16-bit storage buffers (storageBuffer16BitAccess), which float16 weights need")
        }

        var familyCount: UInt32 = 0
        vkGetPhysicalDeviceQueueFamilyProperties(physical, &familyCount, nil)
        var families = [VkQueueFamilyProperties](repeating: VkQueueFamilyProperties(), count: Int(familyCount))
        vkGetPhysicalDeviceQueueFamilyProperties(physical, &familyCount, &families)
        let compute = VkQueueFlags(VK_QUEUE_COMPUTE_BIT.rawValue)
        guard let family = families.firstIndex(where: { $0.queueFlags & compute != 0 }) else {
            throw .unsupported(device: info.name, missing: "a compute queue")
        }
        queueFamily = UInt32(family)

        var memory = VkPhysicalDeviceMemoryProperties()
        vkGetPhysicalDeviceMemoryProperties(physical, &memory)
        let types = withUnsafeBytes(of: memory.memoryTypes) {
            Array($0.bindMemory(to: VkMemoryType.self).prefix(Int(memory.memoryTypeCount)))
        }
        memoryTypes = types.map(\.propertyFlags)

        var enabled = RequiredFeatures()
        enabled.vulkan12.bufferDeviceAddress = VkBool32(VK_TRUE)
        enabled.vulkan12.scalarBlockLayout = VkBool32(VK_TRUE)
        enabled.vulkan11.storageBuffer16BitAccess = VkBool32(float16Storage ? VK_TRUE : VK_FALSE)
        var priority: Float = 1
        var device: VkDevice?
        let result = withUnsafePointer(to: &priority) { priority in
            var queueInfo = VkDeviceQueueCreateInfo()
            queueInfo.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
            queueInfo.queueFamilyIndex = UInt32(family)
            queueInfo.queueCount = 1
            queueInfo.pQueuePriorities = priority
            return withUnsafePointer(to: &queueInfo) { queueInfo in
                withUnsafeMutablePointer(to: &enabled.vulkan11) { vulkan11 in
                  enabled.vulkan12.pNext = UnsafeMutableRawPointer(vulkan11)
                  return withUnsafeMutablePointer(to: &enabled.vulkan12) { features in
                    var info = VkDeviceCreateInfo()
                    info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO
                    info.pNext = UnsafeRawPointer(features)
                    info.queueCreateInfoCount = 1
                    info.pQueueCreateInfos = queueInfo
                    return vkCreateDevice(physical, &info, nil, &device)
                  }
                }
            }
        }
        let name = info.name
        try check(result, "vkCreateDevice on '\(name)'")
        handle = device!
        var queue: VkQueue?
        vkGetDeviceQueue(handle, UInt32(family), 0, &queue)
        self.queue = queue!
    }

    deinit {
        vkDeviceWaitIdle(handle)
        vkDestroyDevice(handle, nil)
    }

    /// The memory type for a buffer whose requirements allow the types in `allowed`: device-local
    /// for tensors; host-visible and coherent for staging, cached where there is such a type
    /// (downloads read it back).
    func memoryType(host: Bool, allowed: UInt32) -> UInt32? {
        let candidates = memoryTypes.indices.filter { allowed & (1 << UInt32($0)) != 0 }
        func first(_ required: VkMemoryPropertyFlagBits...) -> Int? {
            let mask = required.reduce(VkMemoryPropertyFlags(0)) { $0 | $1.rawValue }
            return candidates.first { memoryTypes[$0] & mask == mask }
        }
        let choice = host ? first(VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                ?? first(VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)
            : first(VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) ?? candidates.first
        return choice.map(UInt32.init)
    }
}
