import CVulkan
import Synchronization

/// Where the backend's work is recorded: one command buffer that ops append their dispatches
/// to, submitted when the host needs a result (a download) and waited for. A barrier goes in
/// only before a dispatch that reads or writes what an earlier one since the last barrier
/// wrote, or writes what it read (hazards tracked per buffer allocation, so a buffer that
/// goes back to the pool and is lent again mid-recording is ordered too).
final class CommandStream: @unchecked Sendable {
    let device: LogicalDevice
    private let pool: VkCommandPool
    private let commands: VkCommandBuffer
    private let fence: VkFence
    private let lock = Mutex(())

    private var recording = false
    private var written = Set<ObjectIdentifier>()
    private var read = Set<ObjectIdentifier>()
    private var bound: VkPipeline?
    /// Staging buffers the recorded copies use, held until the submission completes.
    private var inFlight: [DeviceBuffer] = []
    /// Bytes of staging held: past a bound, the stream submits so that loading a large model
    /// does not hold a second copy of it in staging memory.
    private var stagingBytes = 0
    private var submitted = 0, dispatched = 0, ordered = 0

    /// Command buffers submitted, dispatches and barriers recorded so far.
    var counters: (submissions: Int, dispatches: Int, barriers: Int) {
        lock.withLock { _ in (submitted, dispatched, ordered) }
    }

    static let stagingBound = 256 << 20

    init(device: LogicalDevice) throws(VulkanError) {
        self.device = device
        var poolInfo = VkCommandPoolCreateInfo()
        poolInfo.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO
        poolInfo.flags = VkCommandPoolCreateFlags(VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT.rawValue)
        poolInfo.queueFamilyIndex = device.queueFamily
        var pool: VkCommandPool?
        try check(vkCreateCommandPool(device.handle, &poolInfo, nil, &pool), "vkCreateCommandPool")
        self.pool = pool!
        var allocateInfo = VkCommandBufferAllocateInfo()
        allocateInfo.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO
        allocateInfo.commandPool = pool
        allocateInfo.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY
        allocateInfo.commandBufferCount = 1
        var commands: VkCommandBuffer?
        try check(vkAllocateCommandBuffers(device.handle, &allocateInfo, &commands), "vkAllocateCommandBuffers")
        self.commands = commands!
        var fenceInfo = VkFenceCreateInfo()
        fenceInfo.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO
        var fence: VkFence?
        try check(vkCreateFence(device.handle, &fenceInfo, nil, &fence), "vkCreateFence")
        self.fence = fence!
    }

    deinit {
        vkDeviceWaitIdle(device.handle)
        vkDestroyFence(device.handle, fence, nil)
        vkDestroyCommandPool(device.handle, pool, nil)
    }

    /// Records a dispatch of `groups` workgroups.
    func dispatch(_ pipeline: VkPipeline, layout: VkPipelineLayout, _ constants: PushConstants, groups: (Int, Int, Int),
                  reads: [DeviceBuffer], writes: [DeviceBuffer]) {
        precondition(groups.0 > 0 && groups.1 > 0 && groups.2 > 0, "a dispatch of \(groups) workgroups")
        lock.withLock { _ in record(pipeline, layout: layout, constants, groups: groups, reads: reads, writes: writes) }
    }

    private func record(_ pipeline: VkPipeline, layout: VkPipelineLayout, _ constants: PushConstants, groups: (Int, Int, Int),
                        reads: [DeviceBuffer], writes: [DeviceBuffer]) {
        begin()
        order(reads: reads.map { ObjectIdentifier($0.allocation) }, writes: writes.map { ObjectIdentifier($0.allocation) })
        if bound != pipeline {
            vkCmdBindPipeline(commands, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline)
            bound = pipeline
        }
        var bytes = constants.bytes
        bytes += [UInt8](repeating: 0, count: pushConstantBytes - bytes.count)
        vkCmdPushConstants(commands, layout, VkShaderStageFlags(VK_SHADER_STAGE_COMPUTE_BIT.rawValue), 0, UInt32(bytes.count), bytes)
        vkCmdDispatch(commands, UInt32(groups.0), UInt32(groups.1), UInt32(groups.2))
        dispatched += 1
    }

    /// Records a copy of `bytes` between two buffers; `staging` (the host side) is held until
    /// the submission completes.
    func copy(from source: DeviceBuffer, offset sourceOffset: Int = 0, to target: DeviceBuffer, offset targetOffset: Int = 0,
              bytes: Int, holding staging: DeviceBuffer? = nil) throws(VulkanError) {
        let full = lock.withLock { _ in
            record(from: source, offset: sourceOffset, to: target, offset: targetOffset, bytes: bytes, holding: staging)
        }
        if full { try synchronize() }
    }

    /// Records the copy; whether the staging held is now over its bound.
    private func record(from source: DeviceBuffer, offset sourceOffset: Int, to target: DeviceBuffer, offset targetOffset: Int,
                        bytes: Int, holding staging: DeviceBuffer?) -> Bool {
        begin()
        order(reads: [ObjectIdentifier(source.allocation)], writes: [ObjectIdentifier(target.allocation)])
        var region = VkBufferCopy(srcOffset: VkDeviceSize(sourceOffset), dstOffset: VkDeviceSize(targetOffset), size: VkDeviceSize(bytes))
        vkCmdCopyBuffer(commands, source.allocation.buffer, target.allocation.buffer, 1, &region)
        var full = false
        if let staging {
            inFlight.append(staging)
            stagingBytes += staging.bytes
            full = stagingBytes > CommandStream.stagingBound
        }
        return full
    }

    /// Submits what is recorded and waits for it: after this the host may read what the
    /// recorded work wrote to staging memory.
    func synchronize() throws(VulkanError) {
        try synchronize(then: {})
    }

    /// `synchronize()`, then `body` before anything else is recorded: what may only happen
    /// while no recorded command names a buffer (giving idle buffers back to the device).
    func synchronize(then body: () -> Void) throws(VulkanError) {
        try lock.withLock { _ throws(VulkanError) in
            try submitAndWait()
            body()
        }
    }

    private func submitAndWait() throws(VulkanError) {
        guard recording else { return }
        // Make transfers and shader writes visible to the host's reads of staging memory.
        var barrier = VkMemoryBarrier()
        barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
        barrier.srcAccessMask = VkAccessFlags(VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
        barrier.dstAccessMask = VkAccessFlags(VK_ACCESS_HOST_READ_BIT.rawValue)
        vkCmdPipelineBarrier(commands, VkPipelineStageFlags(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue),
                             VkPipelineStageFlags(VK_PIPELINE_STAGE_HOST_BIT.rawValue), 0, 1, &barrier, 0, nil, 0, nil)
        recording = false
        bound = nil
        written.removeAll(keepingCapacity: true)
        read.removeAll(keepingCapacity: true)
        try check(vkEndCommandBuffer(commands), "vkEndCommandBuffer")
        var commands: VkCommandBuffer? = self.commands
        var submit = VkSubmitInfo()
        submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO
        submit.commandBufferCount = 1
        let result = withUnsafePointer(to: &commands) { commands in
            submit.pCommandBuffers = commands
            return vkQueueSubmit(device.queue, 1, &submit, self.fence)
        }
        try check(result, "vkQueueSubmit")
        var fences: VkFence? = self.fence
        try check(vkWaitForFences(device.handle, 1, &fences, VkBool32(VK_TRUE), UInt64.max), "vkWaitForFences")
        vkResetFences(device.handle, 1, &fences)
        vkResetCommandBuffer(self.commands, 0)
        inFlight.removeAll(keepingCapacity: true)
        stagingBytes = 0
        submitted += 1
    }

    private func begin() {
        guard !recording else { return }
        var info = VkCommandBufferBeginInfo()
        info.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO
        info.flags = VkCommandBufferUsageFlags(VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT.rawValue)
        // Beginning a reset primary command buffer fails only when the host is out of memory.
        guard vkBeginCommandBuffer(commands, &info) == VK_SUCCESS else { fatalError("vkBeginCommandBuffer failed: out of host memory") }
        recording = true
    }

    /// A barrier if this work depends on, or overwrites, what came since the last one.
    private func order(reads: [ObjectIdentifier], writes: [ObjectIdentifier]) {
        let hazard = reads.contains(where: written.contains) || writes.contains(where: { written.contains($0) || read.contains($0) })
        if hazard {
            var barrier = VkMemoryBarrier()
            barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER
            barrier.srcAccessMask = VkAccessFlags(VK_ACCESS_SHADER_WRITE_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue
                                                  | VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_READ_BIT.rawValue)
            barrier.dstAccessMask = VkAccessFlags(VK_ACCESS_SHADER_READ_BIT.rawValue | VK_ACCESS_SHADER_WRITE_BIT.rawValue
                                                  | VK_ACCESS_TRANSFER_READ_BIT.rawValue | VK_ACCESS_TRANSFER_WRITE_BIT.rawValue)
            let stages = VkPipelineStageFlags(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT.rawValue | VK_PIPELINE_STAGE_TRANSFER_BIT.rawValue)
            vkCmdPipelineBarrier(commands, stages, stages, 0, 1, &barrier, 0, nil, 0, nil)
            written.removeAll(keepingCapacity: true)
            read.removeAll(keepingCapacity: true)
            ordered += 1
        }
        read.formUnion(reads)
        written.formUnion(writes)
    }
}
