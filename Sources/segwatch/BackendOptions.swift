import ArgumentParser
import Foundation
import SegwatchBackends

extension BackendChoice: ExpressibleByArgument {}

/// `--backend` and `--device`, on every command that runs a model.
struct BackendOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Where models run: cpu; vulkan (a GPU, or any Vulkan device: segwatch devices lists them); auto (a GPU when there is one, else the CPU). Default: $SEGWATCH_BACKEND, else cpu.",
        valueName: "cpu|vulkan|auto"))
    var backend: BackendChoice?

    @Option(help: "The Vulkan device to run on, as segwatch devices numbers them (default: the first usable one).")
    var device: Int?

    func validate() throws {
        if let device, device < 0 { throw ValidationError("--device must be 0 or more, not \(device)") }
    }

    /// The chosen backend, opened, with `threads` for the CPU's share of the work.
    func open(threads: Int) throws -> ComputeBackend {
        let choice = try backend ?? BackendChoice.fromEnvironment()
        return try choice.open(threads: threads, device: device) { FileHandle.standardError.write(Data("segwatch: \($0)\n".utf8)) }
    }
}
