import Foundation
import Synchronization
import SegwatchTensor
import SegwatchVulkan

/// Which backend to run models on, as `--backend`, the `backend` key of the engine config and
/// `SEGWATCH_BACKEND` spell it.
public enum BackendChoice: String, Sendable, CaseIterable, Codable {
    /// The CPU backend.
    case cpu
    /// The Vulkan backend on a device; no device is an error.
    case vulkan
    /// A GPU through Vulkan when there is one, else the CPU (said once in the log). A CPU's
    /// own Vulkan device (lavapipe) does not count: the CPU backend is faster there.
    case auto

    /// `SEGWATCH_BACKEND`'s value, or the CPU without it.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> BackendChoice {
        guard let value = environment["SEGWATCH_BACKEND"], !value.isEmpty else { return .cpu }
        guard let choice = BackendChoice(rawValue: value.lowercased()) else {
            throw BackendError("SEGWATCH_BACKEND=\(value): expected one of cpu, vulkan, auto")
        }
        return choice
    }

    /// Opens the chosen backend: `threads` for the CPU engine (the CPU backend's, and the host
    /// side's on Vulkan), Vulkan device `device` (nil: the first usable one), weights of
    /// `precision` there. `log` hears once why `auto` runs on the CPU.
    public func open(threads: Int, device: Int? = nil, precision: Precision = .float32,
                     log: (String) -> Void = { _ in }) throws -> ComputeBackend {
        let engine = CPUEngine(threads: threads)
        let float16 = precision == .float16
        if precision == .bfloat16 {
            guard self == .cpu else { throw BackendError("--precision bfloat16 needs --backend cpu: on a Vulkan device, use float16") }
            guard cpuRunsBFloat16 else {
                throw BackendError("--precision bfloat16 needs a CPU with AVX512_BF16 (\(CPUDescription.current.model) has none): use float32")
            }
        }
        switch self {
        case .cpu:
            if float16 { throw BackendError("--precision float16 needs --backend vulkan: the CPU backend computes in float32 or bfloat16") }
            return ComputeBackend(cpu: engine, multipliesInBFloat16: precision == .bfloat16)
        case .vulkan:
            do {
                return ComputeBackend(vulkan: try VulkanBackend(device: device ?? firstUsable(gpuOnly: false), float16Weights: float16),
                                      engine: engine)
            } catch let error as VulkanError {
                throw BackendError("--backend vulkan: \(error)")
            }
        case .auto:
            do {
                let index = try device ?? firstUsable(gpuOnly: true)
                return ComputeBackend(vulkan: try VulkanBackend(device: index, float16Weights: float16), engine: engine)
            } catch {
                BackendChoice.fallbackNotice.withLock { said in
                    if !said { log("backend auto: running on the CPU (\(error))") }
                    said = true
                }
                return ComputeBackend(cpu: engine)
            }
        }
    }

    private static let fallbackNotice = Mutex(false)

    /// The first device the backend can run on (a GPU only, with `gpuOnly`).
    private func firstUsable(gpuOnly: Bool) throws(VulkanError) -> Int {
        let devices = try vulkanDevices()
        guard !devices.isEmpty else { throw .noDevices }
        let candidates = devices.filter { $0.usable && (!gpuOnly || $0.type != "cpu") }
        guard let first = candidates.first else {
            if gpuOnly { throw VulkanError.unsupported(device: devices.map(\.name).joined(separator: ", "), missing: "a GPU (only CPU devices found)") }
            let device = devices[0]
            throw VulkanError.unsupported(device: device.name, missing: device.missing ?? "the backend's needs")
        }
        return first.index
    }
}

/// The precision of the weights on a device, as `--precision` and `SEGWATCH_PRECISION` spell it.
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// Float32 throughout: the default, and what the parity tolerances are for.
    case float32
    /// Linear layers' weights stored as float16 on a Vulkan device (half their memory and
    /// reads), the products summed in float32; within the float16 tolerance of the README.
    case float16
    /// Linear layers, attention heads and matrix products multiplied in bfloat16 on a CPU with
    /// AVX512_BF16 (twice the multiply-adds a cycle), their operands rounded to it and the
    /// products summed in float32; within the bfloat16 tolerance of the README.
    case bfloat16

    /// `SEGWATCH_PRECISION`'s value, or float32 without it.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Precision {
        guard let value = environment["SEGWATCH_PRECISION"], !value.isEmpty else { return .float32 }
        guard let precision = Precision(rawValue: value.lowercased()) else {
            throw BackendError("SEGWATCH_PRECISION=\(value): expected float32, float16 or bfloat16")
        }
        return precision
    }
}

/// A backend that could not be chosen or opened, said in the user's words.
public struct BackendError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
