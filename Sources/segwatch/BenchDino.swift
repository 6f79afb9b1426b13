import SegwatchBackends
import ArgumentParser
import Dispatch
import Foundation
import SegwatchCheckpoint
import SegwatchDINOv2
import SegwatchService
import SegwatchSynthetic
import SegwatchTensor

/// `segwatch bench dino`: the DINOv2 image encoder, timed as ../shared/bench/peers.py `dino`
/// times timm's.
struct BenchDino: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dino",
        abstract: "Time the DINOv2 image encoder at 224x224 and 448x448.",
        discussion: """
            Without --dino the model is DINOv2 ViT-B/14 as published (transformers' Dinov2Model: \
            12 layers of 768, 12 heads, patch 14, LayerScale, positions for 518x518) with random \
            weights, written to a temporary folder and loaded as any model folder is. The encoder \
            runs on a random normalized input and gives every token after the final LayerNorm, as \
            the reference benchmark runs timm's forward_features; the positions are resized to the \
            grid (16x16 at 224, 32x32 at 448) as for a published checkpoint, which timm, built at \
            each size, does not need. Keys: dino_ms_224, dino_ms_448.
            """)

    @OptionGroup var options: BenchOptions
    @OptionGroup var tensor: TensorBenchOptions
    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "A DINOv2 model (transformers folder or model name) to time instead of the synthetic ViT-B/14.", transform: ModelArgument.dino)
    var dino: String?

    @Option(help: "Input sizes (square), comma-separated.")
    var sizes = "224,448"

    @Flag(help: "Also report the time spent in each kind of op, per run.")
    var profile = false

    mutating func run() throws {
        let sides = sizes.split(separator: ",").compactMap { Int($0) }
        guard !sides.isEmpty, sides.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--sizes must be positive numbers separated by commas, not '\(sizes)'")
        }
        let engine = CPUEngine(threads: tensor.threads)
        let backend = ProfiledBackend(try backendOptions.open(threads: tensor.threads))
        try engine.run {
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-bench-dino-\(getpid())")
            defer { try? FileManager.default.removeItem(at: scratch) }
            if dino == nil { try writeSyntheticDINOv2(to: scratch, width: 768, layers: 12, heads: 12) }
            let model = try runReporting { try Dinov2Model.load(dino ?? scratch.path, backend: backend) }
            var result = BenchResult()
            for side in sides {
                guard side % model.config.patchSize == 0 else {
                    throw ValidationError("size \(side) is not a multiple of the model's patch \(model.config.patchSize)")
                }
                let pixels = backend.upload(benchTensor([1, 3, side, side], seed: UInt64(side)))
                backend.reset()
                // A download ends each sample: on a device, work runs when the host waits for it.
                let samples = try options.samples { _ = backend.download(try model(pixels).last) }
                result.samples["dino_ms_\(side)"] = samples
                result["dino_ms_\(side)"] = .number(median(samples))
                if profile { record(backend, runs: options.warmup + options.runs, as: "dino_\(side)", into: &result) }
            }
            result["model"] = .string(model.config.summary)
            result.describeMachine()
            result["threads"] = .number(Double(tensor.threads))
            result["runs"] = .number(Double(options.runs))
            print(options.json ? try result.json() : result.text())
        }
    }
}
