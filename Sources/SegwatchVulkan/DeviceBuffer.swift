import CVulkan
import Synchronization

/// One `VkBuffer` with its own memory, addressed by shaders through its device address.
final class DeviceAllocation: @unchecked Sendable {
    let buffer: VkBuffer
    let memory: VkDeviceMemory
    let address: UInt64
    let bytes: Int
    /// Where host-visible memory is mapped (staging buffers).
    let mapped: UnsafeMutableRawPointer?

    init(device: LogicalDevice, bytes: Int, host: Bool) throws(VulkanError) {
        let usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT.rawValue | VK_BUFFER_USAGE_TRANSFER_SRC_BIT.rawValue
            | VK_BUFFER_USAGE_TRANSFER_DST_BIT.rawValue | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT.rawValue
        var bufferInfo = VkBufferCreateInfo()
        bufferInfo.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO
        bufferInfo.size = VkDeviceSize(bytes)
        bufferInfo.usage = VkBufferUsageFlags(usage)
        bufferInfo.sharingMode = VK_SHARING_MODE_EXCLUSIVE
        var buffer: VkBuffer?
        try check(vkCreateBuffer(device.handle, &bufferInfo, nil, &buffer), "vkCreateBuffer of \(bytes) bytes")
        var requirements = VkMemoryRequirements()
        vkGetBufferMemoryRequirements(device.handle, buffer, &requirements)
        guard let memoryType = device.memoryType(host: host, allowed: requirements.memoryTypeBits) else {
            vkDestroyBuffer(device.handle, buffer, nil)
            throw .unsupported(device: device.info.name, missing: host ? "host-visible memory for buffers" : "device memory for buffers")
        }

        var flags = VkMemoryAllocateFlagsInfo()
        flags.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO
        flags.flags = VkMemoryAllocateFlags(VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT.rawValue)
        var memory: VkDeviceMemory?
        let result = withUnsafePointer(to: &flags) { flags in
            var info = VkMemoryAllocateInfo()
            info.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO
            info.pNext = UnsafeRawPointer(flags)
            info.allocationSize = requirements.size
            info.memoryTypeIndex = memoryType
            return vkAllocateMemory(device.handle, &info, nil, &memory)
        }
        guard result == VK_SUCCESS else {
            vkDestroyBuffer(device.handle, buffer, nil)
            throw .failed(call: "vkAllocateMemory of \(bytes) bytes on '\(device.info.name)'", result: result.rawValue)
        }
        var mapped: UnsafeMutableRawPointer?
        let bound = vkBindBufferMemory(device.handle, buffer, memory, 0)
        let mappedResult = bound != VK_SUCCESS || !host ? bound : vkMapMemory(device.handle, memory, 0, VkDeviceSize(bytes), 0, &mapped)
        guard mappedResult == VK_SUCCESS else {
            vkDestroyBuffer(device.handle, buffer, nil)
            vkFreeMemory(device.handle, memory, nil)
            throw .failed(call: bound != VK_SUCCESS ? "vkBindBufferMemory" : "vkMapMemory of \(bytes) bytes", result: mappedResult.rawValue)
        }
        var addressInfo = VkBufferDeviceAddressInfo()
        addressInfo.sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO
        addressInfo.buffer = buffer
        address = vkGetBufferDeviceAddress(device.handle, &addressInfo)
        self.buffer = buffer!
        self.memory = memory!
        self.bytes = bytes
        self.mapped = mapped
    }

    func destroy(_ device: LogicalDevice) {
        vkDestroyBuffer(device.handle, buffer, nil)
        vkFreeMemory(device.handle, memory, nil)
    }
}

/// A buffer lent by a `BufferPool`: back in the pool's free list when the last tensor viewing
/// it goes. A device buffer may be lent again while commands that read it are still recorded:
/// the command stream orders the two by barriers (it tracks hazards per allocation).
public final class DeviceBuffer: @unchecked Sendable {
    let allocation: DeviceAllocation
    let pool: BufferPool
    /// This loan's number in the process, never reused (unlike an address): a key for what is
    /// computed from a buffer's contents.
    let serial: UInt64

    private static let loans = Atomic<UInt64>(0)

    init(_ allocation: DeviceAllocation, pool: BufferPool) {
        self.allocation = allocation
        self.pool = pool
        serial = DeviceBuffer.loans.wrappingAdd(1, ordering: .relaxed).newValue
    }

    deinit { pool.recycle(allocation) }

    var address: UInt64 { allocation.address }
    var bytes: Int { allocation.bytes }
}

/// Buffers by size class, reused frame after frame as the CPU backend's storage pool is:
/// a steady stream of frames allocates nothing after the first. Sizes round up to one of four
/// steps per power of two, so a class wastes at most a quarter.
final class BufferPool: @unchecked Sendable {
    let device: LogicalDevice
    private let host: Bool
    private let lock = Mutex(())
    private var free: [Int: [DeviceAllocation]] = [:]
    private var allocated = 0

    init(device: LogicalDevice, host: Bool) {
        self.device = device
        self.host = host
    }

    /// Bytes held, lent or idle.
    var allocatedBytes: Int { lock.withLock { _ in allocated } }

    deinit {
        for allocation in free.values.joined() { allocation.destroy(device) }
    }

    /// A buffer of at least `bytes`, idle or new.
    func buffer(bytes: Int) throws(VulkanError) -> DeviceBuffer {
        let size = BufferPool.sizeClass(bytes)
        if let allocation = lock.withLock({ _ in free[size]?.popLast() }) { return DeviceBuffer(allocation, pool: self) }
        let allocation = try DeviceAllocation(device: device, bytes: size, host: host)
        lock.withLock { _ in allocated += size }
        return DeviceBuffer(allocation, pool: self)
    }

    func recycle(_ allocation: DeviceAllocation) {
        lock.withLock { _ in free[allocation.bytes, default: []].append(allocation) }
    }

    /// Gives the idle buffers' memory back to the device. Only between submissions: a recorded
    /// command may still name an idle buffer.
    func trim() {
        let idle = lock.withLock { _ in
            let idle = Array(free.values.joined())
            free = [:]
            allocated -= idle.reduce(0) { $0 + $1.bytes }
            return idle
        }
        for allocation in idle { allocation.destroy(device) }
    }

    static func sizeClass(_ bytes: Int) -> Int {
        let bytes = max(bytes, 256)
        let power = 1 << (Int.bitWidth - 1 - (bytes - 1).leadingZeroBitCount)  // the largest power of two below bytes
        let step = max(power / 4, 1)
        return (bytes + step - 1) / step * step
    }
}
