import ArgumentParser
import Foundation
import SegwatchVulkan

/// `segwatch devices`: the Vulkan devices `--backend vulkan --device N` can run on.
struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the Vulkan devices models can run on (--backend vulkan --device N).",
        discussion: """
            Each device with its number, type, Vulkan version, driver and memory, the limits \
            that bound the kernels, and whether segwatch can use it (and if not, what it lacks). \
            A machine without a GPU lists Mesa's lavapipe, a Vulkan device on the CPU, when \
            Debian's mesa-vulkan-drivers is installed. No device at all is not an error: the \
            list is empty and the reason goes to stderr.
            """)

    @Flag(help: "Print a JSON array of devices.")
    var json = false

    func run() throws {
        let devices: [VulkanDeviceInfo]
        do {
            devices = try vulkanDevices()
        } catch {
            printError("\(error)")
            devices = []
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(devices), as: UTF8.self))
            return
        }
        if devices.isEmpty { print("no Vulkan device") }
        for device in devices {
            let memory = String(format: "%.1f GiB", Double(device.memoryBytes) / Double(1 << 30))
            print("\(device.index): \(device.name) (\(device.type), Vulkan \(device.apiVersion)\(device.driver.isEmpty ? "" : ", \(device.driver)"))")
            print("   memory \(memory), workgroups up to \(device.maxWorkgroupCount.map(String.init).joined(separator: " x ")), "
                  + "\(device.maxWorkgroupInvocations) invocations, \(device.maxSharedMemoryBytes / 1024) KiB shared, "
                  + "\(device.maxPushConstantBytes) B push constants, subgroups of \(device.subgroupSize), float16 \(device.float16 ? "yes" : "no"), 16-bit storage \(device.float16Storage ? "yes (--precision float16)" : "no")")
            print("   " + (device.usable ? "usable" : "not usable: lacks \(device.missing ?? "?")"))
        }
    }
}
