import CVulkan

/// What `segwatch devices` shows of one Vulkan device: identity, memory, the limits that bound
/// the kernels' dispatches, and the features the backend uses.
public struct VulkanDeviceInfo: Sendable, Codable, Equatable {
    public var index: Int
    public var name: String
    /// `discrete`, `integrated`, `virtual`, `cpu` or `other`.
    public var type: String
    public var apiVersion: String
    public var driver: String
    public var vendorID: UInt32
    public var deviceID: UInt32
    /// The largest device-local memory heap.
    public var memoryBytes: UInt64
    public var maxAllocationBytes: UInt64
    public var maxAllocations: UInt32
    public var maxWorkgroupCount: [UInt32]
    public var maxWorkgroupInvocations: UInt32
    public var maxSharedMemoryBytes: UInt32
    public var maxPushConstantBytes: UInt32
    /// Invocations per subgroup (the row reductions' unit).
    public var subgroupSize: UInt32
    public var float16: Bool
    public var float16Storage: Bool
    /// Whether the backend can run on it; otherwise `missing` says what it lacks.
    public var usable: Bool
    public var missing: String?
}

/// The process's Vulkan instance: made once, on first use, and kept (the loader's own state is
/// process-wide).
final class VulkanInstance: @unchecked Sendable {
    let handle: VkInstance

    static let shared: Result<VulkanInstance, VulkanError> = Result { () throws(VulkanError) in try VulkanInstance() }

    private init() throws(VulkanError) {
        var instance: VkInstance?
        let result = "segwatch".withCString { name in
            var application = VkApplicationInfo()
            application.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO
            application.pApplicationName = name
            application.pEngineName = name
            application.apiVersion = vulkanVersion(1, 2)
            return withUnsafePointer(to: &application) { application in
                var info = VkInstanceCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO
                info.pApplicationInfo = application
                return vkCreateInstance(&info, nil, &instance)
            }
        }
        if result == VK_ERROR_INCOMPATIBLE_DRIVER { throw .noDevices }
        try check(result, "vkCreateInstance")
        handle = instance!
    }

    var physicalDevices: [VkPhysicalDevice] {
        var count: UInt32 = 0
        guard vkEnumeratePhysicalDevices(handle, &count, nil) == VK_SUCCESS, count > 0 else { return [] }
        var devices = [VkPhysicalDevice?](repeating: nil, count: Int(count))
        guard vkEnumeratePhysicalDevices(handle, &count, &devices) == VK_SUCCESS else { return [] }
        return devices.prefix(Int(count)).compactMap { $0 }
    }
}

func vulkanVersion(_ major: UInt32, _ minor: UInt32) -> UInt32 { (major << 22) | (minor << 12) }

/// The devices the loader finds, in its order (`--device N` counts in it).
public func vulkanDevices() throws(VulkanError) -> [VulkanDeviceInfo] {
    let instance = try VulkanInstance.shared.get()
    return instance.physicalDevices.enumerated().map { describe($1, index: $0) }
}

/// A fixed-size C string field (`char name[256]`) as a Swift string.
func string<T>(_ field: T) -> String {
    withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

/// The Vulkan 1.2 features the backend relies on, queried (or, with `enabling`, requested).
struct RequiredFeatures {
    var vulkan12 = VkPhysicalDeviceVulkan12Features()
    var vulkan11 = VkPhysicalDeviceVulkan11Features()

    init() {
        vulkan12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES
        vulkan11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES
    }

    /// What a device supports.
    static func supported(by device: VkPhysicalDevice) -> (features: RequiredFeatures, float16: Bool) {
        var features = RequiredFeatures()
        var core = VkPhysicalDeviceFeatures2()
        core.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2
        withUnsafeMutablePointer(to: &features.vulkan11) { vulkan11 in
            features.vulkan12.pNext = UnsafeMutableRawPointer(vulkan11)
            withUnsafeMutablePointer(to: &features.vulkan12) { vulkan12 in
                core.pNext = UnsafeMutableRawPointer(vulkan12)
                vkGetPhysicalDeviceFeatures2(device, &core)
            }
        }
        features.vulkan12.pNext = nil
        features.vulkan11.pNext = nil
        return (features, features.vulkan12.shaderFloat16 != 0)
    }

    /// The first missing feature's name, if any.
    var missingFeature: String? {
        if vulkan12.bufferDeviceAddress == 0 { return "bufferDeviceAddress" }
        if vulkan12.scalarBlockLayout == 0 { return "scalarBlockLayout" }
        return nil
    }
}

func describe(_ device: VkPhysicalDevice, index: Int) -> VulkanDeviceInfo {
    var properties = VkPhysicalDeviceProperties2()
    properties.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2
    var vulkan11 = VkPhysicalDeviceVulkan11Properties()
    vulkan11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES
    var driver = VkPhysicalDeviceDriverProperties()
    driver.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES
    var basic = VkPhysicalDeviceProperties()
    vkGetPhysicalDeviceProperties(device, &basic)
    let modern = basic.apiVersion >= vulkanVersion(1, 2)
    if modern {
        withUnsafeMutablePointer(to: &driver) { driverPointer in
            vulkan11.pNext = UnsafeMutableRawPointer(driverPointer)
            withUnsafeMutablePointer(to: &vulkan11) { vulkan11Pointer in
                properties.pNext = UnsafeMutableRawPointer(vulkan11Pointer)
                vkGetPhysicalDeviceProperties2(device, &properties)
            }
        }
    }
    let limits = basic.limits
    var memory = VkPhysicalDeviceMemoryProperties()
    vkGetPhysicalDeviceMemoryProperties(device, &memory)
    let heaps = withUnsafeBytes(of: memory.memoryHeaps) { Array($0.bindMemory(to: VkMemoryHeap.self).prefix(Int(memory.memoryHeapCount))) }
    let deviceLocal = heaps.filter { $0.flags & VkMemoryHeapFlags(VK_MEMORY_HEAP_DEVICE_LOCAL_BIT.rawValue) != 0 }.map(\.size).max() ?? 0

    let type = switch basic.deviceType {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: "discrete"
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: "integrated"
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: "virtual"
    case VK_PHYSICAL_DEVICE_TYPE_CPU: "cpu"
    default: "other"
    }
    let version = basic.apiVersion
    let (features, float16) = modern ? RequiredFeatures.supported(by: device) : (RequiredFeatures(), false)
    let subgroups = VkSubgroupFeatureFlags(VK_SUBGROUP_FEATURE_BASIC_BIT.rawValue | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT.rawValue)
    let computeSubgroups = vulkan11.subgroupSupportedStages & VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue) != 0
        && vulkan11.subgroupSupportedOperations & subgroups == subgroups
    // The kernels' workgroups are 256 invocations (Vulkan promises 128); attention keeps 16 KiB of
    // keys and values in shared memory; push constants carry up to 128 bytes.
    let missing = !modern ? "Vulkan 1.2"
        : features.missingFeature ?? (computeSubgroups ? nil : "subgroup arithmetic in compute shaders")
        ?? (limits.maxComputeWorkGroupInvocations >= 256 && limits.maxComputeWorkGroupSize.0 >= 256 ? nil : "workgroups of 256 invocations")
        ?? (limits.maxComputeSharedMemorySize >= 16384 ? nil : "16 KiB of shared memory")
        ?? (limits.maxPushConstantsSize >= 128 ? nil : "128 bytes of push constants")
    let driverName = modern ? [string(driver.driverName), string(driver.driverInfo)].filter { !$0.isEmpty }.joined(separator: " ") : ""
    return VulkanDeviceInfo(
        index: index, name: string(basic.deviceName), type: type,
        apiVersion: "\(version >> 22 & 0x7f).\(version >> 12 & 0x3ff).\(version & 0xfff)",
        driver: driverName, vendorID: basic.vendorID, deviceID: basic.deviceID,
        memoryBytes: deviceLocal, maxAllocationBytes: modern ? vulkan11.maxMemoryAllocationSize : 0,
        maxAllocations: limits.maxMemoryAllocationCount,
        maxWorkgroupCount: [limits.maxComputeWorkGroupCount.0, limits.maxComputeWorkGroupCount.1, limits.maxComputeWorkGroupCount.2],
        maxWorkgroupInvocations: limits.maxComputeWorkGroupInvocations,
        maxSharedMemoryBytes: limits.maxComputeSharedMemorySize, maxPushConstantBytes: limits.maxPushConstantsSize,
        subgroupSize: modern ? vulkan11.subgroupSize : 0,
        float16: float16, float16Storage: features.vulkan11.storageBuffer16BitAccess != 0,
        usable: missing == nil, missing: missing)
}
