import SegwatchTensor
import SegwatchVulkan
import Testing

@Suite("Vulkan command stream: ordering, buffer reuse, devices")
struct CommandStreamTests {
    /// A long dependent chain recorded without a download, its temporaries going back to the
    /// pool and lent again mid-recording: every step must see the previous one's result (a
    /// missing barrier, or a buffer reused while still read, gives other numbers).
    @Test func aChainOfDependentOpsIsOrdered() throws {
        let vulkan = try Devices.vulkan.get()
        var r = SeededNumbers(state: 11)
        let input = r.tensor([64, 129])
        var device = vulkan.upload(input), host = input
        for step in 0..<60 {
            let scale = 1 + Float(step % 5) * 0.01
            device = vulkan.activate(vulkan.affine(device, scale: scale, shift: -0.01), .relu)
            host = Devices.cpu.activate(Devices.cpu.affine(host, scale: scale, shift: -0.01), .relu)
            if step % 7 == 0 {
                device = vulkan.binary(device, .add, vulkan.softmax(device))
                host = Devices.cpu.binary(host, .add, Devices.cpu.softmax(host))
            }
        }
        #expect(normalizedError(vulkan.download(device), host) <= 1e-10)
    }

    /// Independent ops need no barrier between them; a dependent one does.
    @Test func barriersOnlyWhereDataDepends() throws {
        let vulkan = try VulkanBackend()  // its own counters: the other tests record at the same time
        var r = SeededNumbers(state: 12)
        let x = vulkan.upload(r.tensor([32, 32]))
        _ = vulkan.download(x)  // the upload's copy submitted: a fresh recording next
        let before = vulkan.counters
        let independent = (0..<8).map { vulkan.affine(x, scale: Float($0), shift: 0) }
        let afterIndependent = vulkan.counters
        // The first affine waits for nothing recorded; the others neither.
        #expect(afterIndependent.dispatches - before.dispatches == 8)
        #expect(afterIndependent.barriers == before.barriers)
        let sum = vulkan.binary(independent[0], .add, independent[7])
        #expect(vulkan.counters.barriers == afterIndependent.barriers + 1)
        #expect(vulkan.download(sum).toArray() == Devices.cpu.affine(vulkan.download(x), scale: 7, shift: 0).toArray())
    }

    /// A steady stream of frames allocates no new device memory after the first.
    @Test func buffersAreReusedFrameAfterFrame() throws {
        _ = try Devices.vulkan.get()
        let vulkan = try VulkanBackend()  // its own pool: the other tests allocate at the same time
        var r = SeededNumbers(state: 13)
        let weight = vulkan.linearWeight(vulkan.upload(r.tensor([96, 80])))
        func frame() {
            let x = vulkan.upload(r.tensor([200, 80]))
            let y = vulkan.layerNorm(vulkan.linear(x, weight: weight, bias: nil, activation: .gelu),
                                     weight: vulkan.upload(Tensor(shape: [96], values: Array(repeating: 1, count: 96))),
                                     bias: vulkan.upload(Tensor(zeros: [96])), eps: 1e-5)
            _ = vulkan.download(y)
        }
        frame()
        let held = vulkan.deviceBytes
        for _ in 0..<10 { frame() }
        #expect(vulkan.deviceBytes == held)
    }

    @Test func devicesAreListedWithTheirLimits() throws {
        let devices = try vulkanDevices()
        #expect(!devices.isEmpty)
        let vulkan = try Devices.vulkan.get()
        #expect(devices.contains { $0.name == vulkan.device.name && $0.usable })
        #expect(vulkan.device.maxPushConstantBytes >= 128)
        #expect(vulkan.device.maxWorkgroupCount.allSatisfy { $0 >= 65535 })
    }

    @Test func aDeviceThatIsNotThereIsAnErrorNamingTheCount() throws {
        let count = try vulkanDevices().count
        #expect(throws: VulkanError.noSuchDevice(index: count + 3, count: count)) { try VulkanBackend(device: count + 3) }
        #expect(VulkanError.noSuchDevice(index: 5, count: 1).description.contains("there is no device 5"))
    }
}
