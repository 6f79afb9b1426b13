import SegwatchBackends
import ArgumentParser
import Foundation
import SegwatchService
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchDINOv2
import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor

/// The models and settings of labeling, shared by `label`, `eval --images` and `bench label`.
struct LabelerArguments: ParsableArguments {
    @Option(help: "SAM checkpoint: sam_vit_b/l/h .pth, MobileSAM's mobile_sam.pt, or a model name (segwatch models list).", transform: ModelArgument.sam)
    var sam: String?

    @Option(help: "CLIP model: a transformers or open_clip folder, OpenAI's .pt file, or a model name (segwatch models list).", transform: ModelArgument.clip)
    var clip: String?

    @Option(help: "Short side, in pixels, of the picture CLIP's dense features are computed on.")
    var clipSize = 448

    @Option(help: "A learned segment head: a USE head from 'segwatch train' (with --dino), or a linear one (proj.weight [D, D], optional proj.bias, norm.weight, norm.bias).")
    var head: String?

    @Option(help: "The DINOv2 model a USE head reads: a transformers folder, or a model name (segwatch models list).", transform: ModelArgument.dino)
    var dino: String?

    @Option(help: "Short side, in pixels, of the picture DINOv2 sees.")
    var dinoSize = 448

    @Option(help: "Weight of each segment's masked-crop CLIP embedding blended into its USE embedding, 0...1 (0: no crops).")
    var cropWeight: Float = 0

    @Option(help: "Labels listed per segment.")
    var topK = 5

    @Option(help: "A segment whose best probability is below this is unknown.")
    var minScore: Float = 0

    @Option(help: "A segment whose best cosine similarity is below this is unknown.")
    var minCosine: Float = -1

    @Flag(inversion: .prefixedNo,
          help: "Compare every segment also with generic prompts (background, object, thing, stuff, texture, something): a segment closer to them than to every label is unknown. Without them a single --label matches everything. --no-background for closed-set benchmarks, where every segment must take a label.")
    var background = true

    @OptionGroup(title: "Automatic mask generator")
    var generator: GeneratorOptions

    @Option(help: "Threads for inference.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
        guard (16...4096).contains(clipSize) else { throw ValidationError("--clip-size must be in 16...4096, not \(clipSize)") }
        guard (14...4096).contains(dinoSize) else { throw ValidationError("--dino-size must be in 14...4096, not \(dinoSize)") }
        guard dino == nil || head != nil else { throw ValidationError("--dino is read by a USE head: give --head too") }
        guard topK > 0 else { throw ValidationError("--top-k must be positive, not \(topK)") }
        guard (0...1).contains(cropWeight) else { throw ValidationError("--crop-weight must be in 0...1, not \(cropWeight)") }
        try generator.options.validate()
    }

    /// The models are needed by some uses of a command only (`eval --images`), so each checks.
    func requireModels() throws {
        guard sam != nil, clip != nil else { throw ValidationError("give the models: --sam CHECKPOINT and --clip FOLDER") }
    }

    var options: LabelerOptions {
        var options = LabelerOptions()
        options.clipSize = clipSize
        options.dinoSize = dinoSize
        options.generator = generator.options
        options.classifier.topK = topK
        options.classifier.minimumProbability = minScore
        options.classifier.minimumCosine = minCosine
        options.cropWeight = cropWeight
        return options
    }

    /// The vocabulary read and every prompt checked against the model's context: what a user can
    /// get wrong, found before minutes of inference.
    func words(_ vocabulary: VocabularyOptions) throws -> Words {
        let words = try vocabulary.resolve()
        let tokenizer = try CLIPTokenizer.forModel(clip!)
        try VocabularyEncoder<ComputeBackend>.check(words.vocabulary.labels, templates: words.templates, tokenizer: tokenizer,
                                                context: try CLIPConfig.load(clip!).contextLength)
        return Words(vocabulary: words.vocabulary, templates: words.templates, tokenizer: tokenizer)
    }

    /// Loads both models and the label embeddings (from the cache when it has them), with a
    /// progress bar while labels the cache lacks are encoded.
    func labeler(_ words: Words, vocabulary: VocabularyOptions) throws -> ImageLabeler<ComputeBackend> {
        let models = try ModelSet(sam: sam!, clip: clip!, head: head, dino: dino, backend: try backendOptions.open(threads: threads),
                                  warn: { printError("warning: \($0)") })
        let progress = Progress.onTerminal()
        defer { progress.clear() }
        return try models.labeler(vocabulary: words.vocabulary, templates: words.templates, background: background, options: options,
                                  cache: vocabulary.cacheStore(),
                                  progress: { progress.bar("encoding the vocabulary", done: $0, total: $1, unit: "prompts") },
                                  warn: { printError("warning: \($0)") })
    }

    /// The XXH64 digests of the models, for records that say what produced them.
    func digests(memo: URL?) throws -> ModelDigests {
        ModelDigests(sam: hexDigest(try fileDigest(sam!, memo: memo)),
                     clip: hexDigest(try CLIPFiles.digest(clip!, memo: memo)),
                     head: try head.map { hexDigest(try fileDigest($0)) },
                     dino: try dino.map { hexDigest(try DINOv2Files.digest($0, memo: memo)) })
    }
}

/// A vocabulary ready to embed.
struct Words {
    var vocabulary: Vocabulary
    var templates: PromptTemplates
    var tokenizer: CLIPTokenizer

    var names: [String] { vocabulary.labels.map(\.name) }
}

struct ModelDigests: Encodable {
    var sam: String
    var clip: String
    var head: String?
    var dino: String?
}
