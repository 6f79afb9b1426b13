import SegwatchBackends
import ArgumentParser
import Dispatch
import Foundation
import SegwatchService
import SegwatchSAM
import SegwatchSynthetic
import SegwatchTensor

/// `segwatch bench sam`: the SAM image encoder and mask decoder, timed as
/// ../shared/bench/peers.py `sam-encoder` and `sam-decoder` time the official code.
struct BenchSam: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sam",
        abstract: "Time SAM's image encoder at 1024x1024 and its mask decoder per prompt at batches of 1, 16 and 64.",
        discussion: """
            The encoder runs on a random normalized 1024x1024 input. The decoder runs one \
            foreground point per prompt (plus the padding point) with multimask output, to the \
            low-resolution logits and IoU scores, against that input's embedding: the work of \
            the reference benchmark. Keys: encoder_ms, decoder_ms_per_prompt_b1, _b16, _b64.
            """)

    @OptionGroup var options: BenchOptions
    @OptionGroup var tensor: TensorBenchOptions
    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "SAM checkpoint: sam_vit_b/l/h .pth, MobileSAM's mobile_sam.pt, or a model name (segwatch models list).", transform: ModelArgument.sam)
    var sam: String

    @Option(help: "Decoder batch sizes, comma-separated.")
    var batches = "1,16,64"

    @Flag(help: "Also report the time spent in each kind of op, per encoder run and per decoder batch.")
    var profile = false

    mutating func run() throws {
        let batchSizes = batches.split(separator: ",").compactMap { Int($0) }
        guard !batchSizes.isEmpty, batchSizes.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--batches must be positive integers separated by commas, not '\(batches)'")
        }
        let engine = CPUEngine(threads: tensor.threads)
        let backend = ProfiledBackend(try backendOptions.open(threads: tensor.threads))
        // Host-side work (pooling, classification, mask post-processing) on the same threads.
        try engine.run {
            let model = try runReporting { try Sam(contentsOf: sam, backend: backend) }
            var result = BenchResult()
            func time(_ key: String, divisor: Double = 1, _ body: () throws -> Void) rethrows {
                for _ in 0..<options.warmup { try body() }
                var samples: [Double] = []
                for _ in 0..<options.runs {
                    let start = DispatchTime.now()
                    try body()
                    samples.append(milliseconds(since: start) / divisor)
                }
                result.samples[key] = samples
                result[key] = .number(median(samples))
            }

            // Timing does not depend on the values: deterministic ones in [-1, 1).
            let input = backend.upload(benchTensor([1, 3, 1024, 1024], seed: 1))
            var embedding = model.encode(input)
            backend.reset()
            // A download ends each sample: on a device, work runs when the host waits for it.
            time("encoder_ms") {
                embedding = model.encode(input)
                _ = backend.download(backend.slice(embedding, dim: 1, 0..<1))
            }
            if profile { record(backend, runs: options.warmup + options.runs, as: "encoder", into: &result) }
            for b in batchSizes {
                let coordinates = benchTensor([b, 2], seed: UInt64(b)).toArray().map { Double($0 + 1) * 512 }
                let prompts = (0..<b).map { SamPrompt(points: [(coordinates[2 * $0], coordinates[2 * $0 + 1], 1)]) }
                try time("decoder_ms_per_prompt_b\(b)", divisor: Double(b)) {
                    _ = backend.download(try model.decode(embedding, prompts: prompts, multimask: true).iouPredictions)
                }
                if profile { record(backend, runs: options.warmup + options.runs, as: "decoder_b\(b)", into: &result) }
            }
            result["encoder"] = .string(model.imageEncoder.summary)
            result.describeMachine()
            result["threads"] = .number(Double(tensor.threads))
            result["runs"] = .number(Double(options.runs))
            print(options.json ? try result.json() : result.text())
        }
    }
}
