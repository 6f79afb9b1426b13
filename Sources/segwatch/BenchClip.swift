import SegwatchBackends
import ArgumentParser
import Dispatch
import Foundation
import SegwatchService
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchSynthetic
import SegwatchTensor

/// `segwatch bench clip`: the CLIP image tower, timed as ../shared/bench/peers.py `clip-image`
/// times open_clip's.
struct BenchClip: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clip",
        abstract: "Time the CLIP image tower at 224x224 and 448x448, and a 1,000-label vocabulary cold and cached.",
        discussion: """
            Without --clip the model is OpenAI's ViT-B/16 layout (open_clip 'ViT-B-16' with \
            QuickGELU: 12 blocks of 768, patch 16, text 12 blocks of 512, D 512) with random \
            weights, written to a temporary folder and loaded as any model folder is. The tower \
            runs on a random normalized input, pooled output only, as the reference benchmark runs \
            open_clip's; at 448 the position embedding is interpolated to 28x28. \
            Keys: image_tower_ms_224, image_tower_ms_448.

            The vocabulary is the reference benchmark's: --labels names ('red car', 'object number 7' \
            ...), one template 'a photo of a {}.'. vocab_cold_ms: tokenize, encode, normalize and \
            store in an empty cache (the model already loaded, as the peer's is); \
            vocab_cached_ms: the model folder's digest (remembered) and every label read back \
            from the cache, the text tower never touched. Runs --vocab-runs cold, --runs cached.
            """)

    @OptionGroup var options: BenchOptions
    @OptionGroup var tensor: TensorBenchOptions
    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "A CLIP model (folder, OpenAI .pt or model name) to time instead of the synthetic ViT-B/16.", transform: ModelArgument.clip)
    var clip: String?

    @Option(help: "Input sizes (square), comma-separated.")
    var sizes = "224,448"

    @Option(help: "Labels in the vocabulary timing; 0 skips it.")
    var labels = 1000

    @Option(help: "Timed cold vocabulary runs (each encodes every label).")
    var vocabRuns = 1

    @Flag(help: "Also report the time spent in each kind of op, per image-tower run and per cold vocabulary.")
    var profile = false

    mutating func run() throws {
        let sides = sizes.split(separator: ",").compactMap { Int($0) }
        guard !sides.isEmpty, sides.allSatisfy({ $0 > 0 && $0 % 16 == 0 }) else {
            throw ValidationError("--sizes must be positive multiples of 16 separated by commas, not '\(sizes)'")
        }
        guard labels >= 0, vocabRuns > 0 else { throw ValidationError("--labels must not be negative and --vocab-runs must be positive") }
        let engine = CPUEngine(threads: tensor.threads)
        let backend = ProfiledBackend(try backendOptions.open(threads: tensor.threads))
        // Host-side work (pooling, classification, mask post-processing) on the same threads.
        try engine.run {
            let modelFolder = try runReporting { try BenchCLIPFiles(clip, name: "clip") }
            defer { modelFolder.remove() }
            let folder = modelFolder.path
            let model = try runReporting { try CLIP.load(folder, backend: backend) }
            var result = BenchResult()
            for side in sides {
                guard side % model.config.patchSize == 0 else {
                    throw ValidationError("size \(side) is not a multiple of the model's patch \(model.config.patchSize)")
                }
                let pixels = backend.upload(benchTensor([1, 3, side, side], seed: UInt64(side)))
                backend.reset()
                // A download ends each sample: on a device, work runs when the host waits for it.
                let samples = options.samples { _ = backend.download(model.vision(pixels, dense: false).pooled) }
                result.samples["image_tower_ms_\(side)"] = samples
                result["image_tower_ms_\(side)"] = .number(median(samples))
                if profile { record(backend, runs: options.warmup + options.runs, as: "image_tower_\(side)", into: &result) }
            }
            if labels > 0 {
                backend.reset()
                try runReporting { try timeVocabulary(model: model, folder: folder, into: &result) }
                if profile { record(backend, runs: vocabRuns, as: "vocab_cold", into: &result) }
            }
            result["model"] = .string(model.config.summary)
            result.describeMachine()
            result["threads"] = .number(Double(tensor.threads))
            result["runs"] = .number(Double(options.runs))
            print(options.json ? try result.json() : result.text())
        }
    }
}

extension BenchClip {
    /// peers.py's `vocab(n)`: adjective x noun pairs, then numbered objects.
    static func peerLabels(_ count: Int) -> [String] {
        let nouns = ["person", "bicycle", "car", "bus", "tree", "road", "sign", "building", "sky", "dog", "cat",
                     "bird", "boat", "truck", "horse", "chair", "table", "bottle", "cup", "window", "door",
                     "grass", "flower", "rock", "river", "cloud", "lamp", "bench", "fence", "wheel"]
        let adjectives = ["", "red ", "small ", "old ", "large ", "blue ", "wooden ", "metal ", "white ", "dark ",
                          "green ", "broken ", "shiny ", "wet ", "striped ", "empty ", "tall ", "round ", "yellow ",
                          "distant ", "parked ", "moving ", "black ", "plastic ", "glass ", "stone ", "bright ",
                          "tiny ", "huge ", "grey ", "brown ", "orange ", "pink ", "purple "]
        var labels = adjectives.flatMap { adjective in nouns.map { adjective + $0 } }
        labels += (0..<max(0, count - labels.count)).map { "object number \($0)" }
        return Array(labels.prefix(count))
    }

    /// `peerLabels(count)` encoded with the single template, as the labeling benchmarks
    /// classify against them (not timed).
    static func peerVocabulary<B: Backend>(_ count: Int, model: CLIP<B>, folder: String) throws -> LabelEmbeddings {
        let encoder = VocabularyEncoder(text: model.text, tokenizer: try CLIPTokenizer.forModel(folder), templates: .single)
        let words = try Vocabulary(arguments: peerLabels(count)).labels
        return LabelEmbeddings(labels: words, dimension: model.config.embedDim, values: try encoder.encode(words).flatMap { $0 })
    }

    func timeVocabulary<B: Backend>(model: CLIP<B>, folder: String, into result: inout BenchResult) throws {
        let vocabulary = try Vocabulary(arguments: Self.peerLabels(labels))
        let templates = PromptTemplates.single
        let encoder = VocabularyEncoder(text: model.text, tokenizer: try CLIPTokenizer.forModel(folder), templates: templates)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-bench-vocab-\(getpid())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let cache = VocabularyCache(directory: scratch)
        let digest = try CLIPFiles.digest(folder, memo: cache.digestMemo)
        let progress = Progress.onTerminal()
        var cold: [Double] = []
        for _ in 0..<vocabRuns {
            try? FileManager.default.removeItem(at: cache.packFile(model: digest, templates: templates.digest))
            let start = DispatchTime.now()
            _ = try embedVocabulary(vocabulary, templates: templates, modelDigest: digest, cache: cache, encoder: { encoder }) { done, total in
                progress.bar("vocabulary", done: done, total: total, unit: "prompts")
            }
            cold.append(milliseconds(since: start))
            progress.clear()
        }
        var cached: [Double] = []
        for _ in 0..<(options.warmup + options.runs) {
            let start = DispatchTime.now()
            let digest = try CLIPFiles.digest(folder, memo: cache.digestMemo)
            let (embeddings, report) = try embedVocabulary(try Vocabulary(arguments: Self.peerLabels(labels)), templates: templates,
                                                           modelDigest: digest, cache: cache,
                                                           encoder: { () throws -> VocabularyEncoder<B> in throw CLIPError.invalidInput("the cached vocabulary run asked for the text tower") })
            cached.append(milliseconds(since: start))
            precondition(report.cached == labels && embeddings.values.count == labels * model.config.embedDim)
        }
        cached.removeFirst(options.warmup)
        result.samples["vocab_cold_ms"] = cold
        result.samples["vocab_cached_ms"] = cached
        result["vocab_cold_ms"] = .number(median(cold))
        result["vocab_cached_ms"] = .number(median(cached))
        result["vocab_labels"] = .number(Double(labels))
        result["vocab_templates"] = .number(Double(templates.templates.count))
    }
}

/// The CLIP model folder a benchmark times: `--clip` as given, or else OpenAI's ViT-B/16 layout
/// with random weights, written to a temporary folder that `remove()` deletes.
struct BenchCLIPFiles {
    let path: String
    private let scratch: URL?

    init(_ clip: String?, name: String) throws {
        if let clip {
            (path, scratch) = (clip, nil)
            return
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-bench-\(name)-\(getpid())")
        do {
            try writeSyntheticOpenCLIP(to: url, vision: (768, 12, 64), text: (512, 12, 8), embedDim: 512)
        } catch {
            try? FileManager.default.removeItem(at: url)
            throw error
        }
        (path, scratch) = (url.path, url)
    }

    func remove() {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }
}
