import ArgumentParser
import SegwatchBackends
import Foundation
import SegwatchService

/// `segwatch features`: every USE head input of each segment of a pairs file, computed once,
/// in shards for `segwatch train`.
struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute the USE head's inputs of segment-text pairs, in shards for 'segwatch train'.",
        discussion: """
            Each picture is seen whole by each encoder, its short side at --clip-size (CLIP) or \
            --dino-size (DINOv2) and its long side the nearest multiple of the patch, as the \
            labeling does. For each segment: the training-free USE embedding before normalization, \
            CLIP's hidden states after --clip-levels and DINOv2's after --dino-levels averaged by \
            the mask's coverage of each model's grid (patch rows only), CLIP's pooled embedding and \
            DINOv2's class token; and the text embedding (CLIP, normalized) of every description.

            Shards (shard-00000.safetensors, ...: segwatch-use-features/1) hold whole pictures, at \
            least --shard-size segments each but the last; memory is bounded by one shard. An \
            interrupted run continues where it stopped (progress.json in --out). A line that is \
            not a valid pair, a missing picture or a mask of another size is named with its line \
            number and skipped (refused with --strict).
            """)

    @Option(help: ArgumentHelp("The pairs (JSON lines: image, segmentation, texts).", valueName: "pairs.jsonl"))
    var pairs: String

    @Option(help: ArgumentHelp("The folder the pairs' image paths are relative to.", valueName: "dir"))
    var images: String

    @Option(help: "CLIP model: a transformers or open_clip folder, OpenAI's .pt file, or a model name.", transform: ModelArgument.clip)
    var clip: String

    @Option(help: "DINOv2 model: a transformers folder, or a model name (segwatch models list).", transform: ModelArgument.dino)
    var dino: String

    @Option(help: ArgumentHelp("CLIP's blocks whose hidden states the head reads (default: the middle one and the last).", valueName: "K,K"))
    var clipLevels: String?

    @Option(help: ArgumentHelp("DINOv2's layers whose hidden states the head reads (default: the middle one and the last).", valueName: "K,K"))
    var dinoLevels: String?

    @Option(help: "Short side, in pixels, of the picture CLIP sees.")
    var clipSize = 448

    @Option(help: "Short side, in pixels, of the picture DINOv2 sees.")
    var dinoSize = 448

    @Option(help: "Segments per shard (at least; a picture is never split).")
    var shardSize = 4096

    @Flag(help: "Refuse the pairs file at its first invalid line instead of skipping it.")
    var strict = false

    @Option(help: ArgumentHelp("The folder of shards to write.", valueName: "dir"))
    var out: String

    @Option(help: "Threads for inference.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard (16...4096).contains(clipSize), (14...4096).contains(dinoSize) else { throw ValidationError("--clip-size and --dino-size must be in 16...4096") }
        guard shardSize > 0 else { throw ValidationError("--shard-size must be positive") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
        for (name, value) in [("--clip-levels", clipLevels), ("--dino-levels", dinoLevels)] {
            if let value, Self.levels(value) == nil { throw ValidationError("\(name) must be block numbers separated by commas (6,12), not '\(value)'") }
        }
    }

    static func levels(_ text: String) -> [Int]? {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
        return values.compactMap { $0 }
    }

    func run() throws {
        keepTrainingBuffers()
        try runReporting {
            var job = FeatureExtraction(pairs: pairs, images: images, clip: clip, dino: dino, out: out)
            (job.clipLevels, job.dinoLevels) = (clipLevels.flatMap(Self.levels), dinoLevels.flatMap(Self.levels))
            (job.clipSize, job.dinoSize, job.shardSize, job.strict, job.threads) = (clipSize, dinoSize, shardSize, strict, threads)
            job.backendChoice = try backendOptions.backend ?? BackendChoice.fromEnvironment()
            job.device = backendOptions.device
            let bar = Progress.onTerminal()
            let summary = try job.run(warn: { printError("warning: \($0)") }, note: { printError($0) }, progress: { done, total, segments in
                bar.bar("features", done: done, total: total, unit: "pictures", detail: "\(segments) segments")
            })
            bar.clear()
            printError("\(summary.segments) segments of \(summary.pictures) pictures in \(summary.shards) shards in \(out)")
        }
    }
}
