import ArgumentParser
import Foundation
import SegwatchBackends

extension BackendChoice: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// `--backend`, `--device` and `--precision`, on every command that runs a model.
struct BackendOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Where models run: cpu; vulkan (a GPU, or any Vulkan device: segwatch devices lists them); auto (a GPU when there is one, else the CPU). Default: $SEGWATCH_BACKEND, else cpu.",
        valueName: "cpu|vulkan|auto"))
    var backend: BackendChoice?

    @Option(help: "The Vulkan device to run on, as segwatch devices numbers them (default: the first usable one).")
    var device: Int?

    @Option(help: ArgumentHelp(
        "float16: on a Vulkan device, store linear layers' weights as float16 (half the memory; results within the float16 tolerance in the README). bfloat16: on a CPU with AVX512_BF16, multiply linear layers, attention and matrix products in bfloat16, summing in float32 (up to twice as fast; results within the bfloat16 tolerance in the README). Default: $SEGWATCH_PRECISION, else float32.",
        valueName: "float32|float16|bfloat16"))
    var precision: Precision?

    func validate() throws {
        if let device, device < 0 { throw ValidationError("--device must be 0 or more, not \(device)") }
    }

    /// The chosen backend, opened, with `threads` for the CPU's share of the work; a backend
    /// that cannot be opened is the command's one-line error.
    func open(threads: Int) throws -> ComputeBackend {
        try runReporting {
            let choice = try backend ?? BackendChoice.fromEnvironment()
            return try choice.open(threads: threads, device: device, precision: precision ?? Precision.fromEnvironment()) {
                FileHandle.standardError.write(Data("segwatch: \($0)\n".utf8))
            }
        }
    }
}
