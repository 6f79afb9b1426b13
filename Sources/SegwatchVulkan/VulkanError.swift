import CVulkan

/// Why the Vulkan backend could not start or could not do what was asked, naming the device,
/// the call or the limit.
public enum VulkanError: Error, Equatable, CustomStringConvertible {
    /// A Vulkan call returned an error code.
    case failed(call: String, result: Int32)
    /// The loader found no device (no driver installed, or none usable).
    case noDevices
    /// `--device N` beyond the devices there are.
    case noSuchDevice(index: Int, count: Int)
    /// The device lacks something the backend's kernels need.
    case unsupported(device: String, missing: String)
    /// A request beyond a device limit that cannot be split.
    case overLimit(device: String, what: String, requested: Int, limit: Int)

    public var description: String {
        switch self {
        case .failed(let call, let result):
            "Vulkan: \(call) failed with \(resultName(result))"
        case .noDevices:
            "Vulkan: no device found (is a Vulkan driver installed? Debian's mesa-vulkan-drivers gives the CPU device lavapipe)"
        case .noSuchDevice(let index, let count):
            "Vulkan: there is no device \(index): \(count) device\(count == 1 ? "" : "s") found (`segwatch devices` lists them)"
        case .unsupported(let device, let missing):
            "Vulkan: device '\(device)' does not support \(missing), which the backend needs"
        case .overLimit(let device, let what, let requested, let limit):
            "Vulkan: \(what) needs \(requested), over device '\(device)''s limit of \(limit)"
        }
    }
}

/// Throws `VulkanError.failed` unless `result` is `VK_SUCCESS`.
func check(_ result: VkResult, _ call: @autoclosure () -> String) throws(VulkanError) {
    guard result == VK_SUCCESS else { throw .failed(call: call(), result: result.rawValue) }
}

private func resultName(_ code: Int32) -> String {
    switch VkResult(rawValue: code) {
    case VK_ERROR_OUT_OF_HOST_MEMORY: "VK_ERROR_OUT_OF_HOST_MEMORY"
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: "VK_ERROR_OUT_OF_DEVICE_MEMORY (the device's memory is full)"
    case VK_ERROR_INITIALIZATION_FAILED: "VK_ERROR_INITIALIZATION_FAILED"
    case VK_ERROR_DEVICE_LOST: "VK_ERROR_DEVICE_LOST (the driver reset the device)"
    case VK_ERROR_INCOMPATIBLE_DRIVER: "VK_ERROR_INCOMPATIBLE_DRIVER (no driver for this Vulkan version)"
    case VK_ERROR_FEATURE_NOT_PRESENT: "VK_ERROR_FEATURE_NOT_PRESENT"
    case VK_ERROR_TOO_MANY_OBJECTS: "VK_ERROR_TOO_MANY_OBJECTS"
    case VK_ERROR_LAYER_NOT_PRESENT: "VK_ERROR_LAYER_NOT_PRESENT"
    case VK_ERROR_EXTENSION_NOT_PRESENT: "VK_ERROR_EXTENSION_NOT_PRESENT"
    default: "VkResult \(code)"
    }
}
