import ArgumentParser
import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchDINOv2
import SegwatchPipeline
import SegwatchSAM
import SegwatchService
import SegwatchTensor
import SegwatchUSE

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

    @Option(help: "DINOv2 model: a transformers folder.")
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

    /// Where an interrupted run stands: the pictures done and the shards written, for these
    /// pairs and settings.
    private struct State: Codable, Equatable {
        var pairs: String
        var settings: String
        var pictures: Int
        var shards: Int
        var segments: Int
    }

    func run() throws {
        keepTrainingBuffers()
        try runReporting {
            let (read, problems) = try readSegmentTextPairs(pairs)
            if let first = problems.first, strict { throw CommandError(first) }
            for problem in problems { printError("warning: \(problem): skipped") }
            let engine = CPUEngine(threads: threads)
            let backend = CPUBackend(engine: engine)
            let clipModel = try CLIP.load(clip, backend: backend)
            let dinoModel = try Dinov2Model.load(dino, backend: backend)
            let clipLevels = clipLevels.flatMap(Self.levels) ?? [clipModel.vision.depth / 2, clipModel.vision.depth]
            let dinoLevels = dinoLevels.flatMap(Self.levels) ?? [dinoModel.config.layers / 2, dinoModel.config.layers]
            guard clipLevels.allSatisfy({ (0...clipModel.vision.depth).contains($0) }) else {
                throw CommandError("--clip-levels \(clipLevels): this CLIP has blocks 1...\(clipModel.vision.depth)")
            }
            guard dinoLevels.allSatisfy({ (0...dinoModel.config.layers).contains($0) }) else {
                throw CommandError("--dino-levels \(dinoLevels): this DINOv2 has layers 1...\(dinoModel.config.layers)")
            }
            let featurizer = FrameFeaturizer(clip: clipModel, backend: backend, clipSize: clipSize, clipLevels: clipLevels, dino: dinoModel,
                                             dinoSize: dinoSize, dinoLevels: dinoLevels)
            let tokenizer = try CLIPTokenizer.forModel(clip)
            let (clipDigest, dinoDigest) = (hexDigest(try CLIPFiles.digest(clip)), hexDigest(try DINOv2Files.digest(dino)))
            let shape = UseHeadShape(embed: clipModel.config.embedDim, clipWidth: clipModel.config.vision.width,
                                     dinoWidth: dinoModel.config.hiddenSize, clipLevels: clipLevels.count, dinoLevels: dinoLevels.count)
            func builder() -> FeatureShardBuilder {
                FeatureShardBuilder(shape: shape, clipLevels: clipLevels, dinoLevels: dinoLevels, clipDigest: clipDigest, dinoDigest: dinoDigest)
            }

            let order = groupedByImage(read, image: \.image)
            let folder = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let progressFile = folder.appendingPathComponent("progress.json")
            let settings = "\(clipDigest) \(dinoDigest) \(clipLevels) \(dinoLevels) \(clipSize) \(dinoSize) \(shardSize)"
            var progress = State(pairs: hexDigest(try fileDigest(pairs)), settings: settings, pictures: 0, shards: 0, segments: 0)
            if let data = try? Data(contentsOf: progressFile), let saved = try? JSONDecoder().decode(State.self, from: data) {
                guard saved.pairs == progress.pairs, saved.settings == progress.settings else {
                    throw CommandError("--out \(out) holds features of other pairs or settings (progress.json); choose another folder")
                }
                progress = saved
                if progress.pictures > 0 { printError("continuing after \(progress.pictures) of \(order.count) pictures (\(progress.shards) shards)") }
            }
            var shard = builder()
            let bar = Progress.onTerminal()
            func flush() throws {
                guard shard.count > 0 else { return }
                let ids = shard.texts.map(tokenizer.tokenize)
                var embeddings: [Float] = []
                for start in stride(from: 0, to: ids.count, by: 64) {
                    let rows = backend.download(try clipModel.text(Array(ids[start..<min(ids.count, start + 64)])))
                    let width = rows.shape[1], values = rows.toArray()
                    for r in 0..<rows.shape[0] { embeddings += normalized(values[(r * width)..<((r + 1) * width)]) }
                }
                let name = String(format: "shard-%05d.safetensors", progress.shards)
                try shard.write(to: folder.appendingPathComponent(name).path,
                                textEmbeddings: Tensor(shape: [shard.texts.count, shape.embed], values: embeddings))
                progress.shards += 1
                progress.segments += shard.count
                shard = builder()
            }
            try engine.run {
                for (index, (image, list)) in order.enumerated() where index >= progress.pictures {
                    bar.bar("features", done: index, total: order.count, unit: "pictures", detail: "\(progress.segments + shard.count) segments")
                    let path = URL(fileURLWithPath: images).appendingPathComponent(image).path
                    let picture: RGBImage
                    do { picture = try loadRGBImage(path, frame: 0) } catch {
                        let message = "\(pairs):\(list[0].line): \(error)"
                        if strict { throw CommandError(message) }
                        printError("warning: \(message): its \(list.count) pairs skipped")
                        continue
                    }
                    var kept: [SegmentTextPair] = []
                    for pair in list {
                        if pair.mask.height == picture.height && pair.mask.width == picture.width { kept.append(pair); continue }
                        let message = "\(pairs):\(pair.line): a \(pair.mask.width)x\(pair.mask.height) mask for the \(picture.width)x\(picture.height) picture \(image)"
                        if strict { throw CommandError(message) }
                        printError("warning: \(message): skipped")
                    }
                    if !kept.isEmpty {
                        let features = featurizer(picture)
                        let (input, present) = try headInputs(features, masks: kept.map(\.mask))
                        for n in kept.indices where !present.contains(n) {
                            printError("warning: \(pairs):\(kept[n].line): its mask covers no patch: skipped")
                        }
                        if !present.isEmpty { try shard.append(input, descriptions: present.map { kept[$0].texts }) }
                    }
                    if shard.count >= shardSize {
                        try flush()
                        progress.pictures = index + 1
                        try JSONEncoder().encode(progress).write(to: progressFile, options: .atomic)
                    }
                }
                try flush()
                progress.pictures = order.count
                try JSONEncoder().encode(progress).write(to: progressFile, options: .atomic)
            }
            bar.clear()
            printError("\(progress.segments) segments of \(order.count) pictures in \(progress.shards) shards in \(out)")
        }
    }
}
