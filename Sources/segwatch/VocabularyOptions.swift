import ArgumentParser
import Foundation
import SegwatchService
import SegwatchCLIP
import SegwatchTensor

/// The words segments are labeled with, and how they are embedded: shared by every command that
/// classifies.
struct VocabularyOptions: ParsableArguments {
    @Option(name: .customLong("label"), help: "A label, with synonyms after | (car|automobile). Repeatable.")
    var labels: [String] = []

    @Option(help: "A vocabulary file: one label per line, synonyms after |, # starts a comment.")
    var vocab: String?

    @Option(name: .customLong("template"),
            help: "A prompt template, {} where the label goes. Repeatable; replaces the default ensemble.")
    var templateTexts: [String] = []

    @Option(help: "A file of prompt templates, one per line; replaces the default ensemble.")
    var templates: String?

    @Option(help: "Folder of the embedding cache (default: $SEGWATCH_CACHE, else $XDG_CACHE_HOME/segwatch, else ~/.cache/segwatch).")
    var cache: String?

    @Flag(help: "Neither read nor write the embedding cache.")
    var noCache = false

    func validate() throws {
        guard templateTexts.isEmpty || templates == nil else { throw ValidationError("give --template or --templates, not both") }
        guard cache == nil || !noCache else { throw ValidationError("give --cache or --no-cache, not both") }
    }

    var isEmpty: Bool { labels.isEmpty && vocab == nil }

    /// The --vocab file's labels, then the --label ones, and the prompt templates: read once,
    /// checked before any model runs.
    func resolve() throws(VocabularyError) -> (vocabulary: Vocabulary, templates: PromptTemplates) {
        var all: [VocabularyLabel] = []
        if let vocab { all += try Vocabulary(file: vocab).labels }
        for (i, text) in labels.enumerated() { all.append(try VocabularyLabel(parsing: text, origin: "--label \(i + 1)")) }
        let templates: PromptTemplates
        if let file = self.templates {
            templates = try PromptTemplates(file: file)
        } else {
            templates = templateTexts.isEmpty ? .standard : try PromptTemplates(templateTexts)
        }
        return (try Vocabulary(all), templates)
    }

    func cacheStore() -> VocabularyCache? {
        noCache ? nil : VocabularyCache(directory: cache.map { URL(fileURLWithPath: $0) } ?? VocabularyCache.defaultDirectory)
    }

    /// The label embeddings for the model in `clip`: from the cache, encoding only what it lacks
    /// (with a progress bar on a terminal). `model` and `tokenizer` are used when already loaded;
    /// otherwise they are loaded only if something must be encoded. Cache trouble is a warning.
    func embeddings<B: Backend>(_ words: (vocabulary: Vocabulary, templates: PromptTemplates), clip: String, backend: B,
                                model: CLIP<B>? = nil, tokenizer: CLIPTokenizer? = nil) throws -> (LabelEmbeddings, VocabularyReport) {
        let store = cacheStore()
        let digest = try CLIPFiles.digest(clip, memo: store?.digestMemo)
        let progress = Progress.onTerminal()
        let result = try embedVocabulary(words.vocabulary, templates: words.templates, modelDigest: digest, cache: store, encoder: { () throws -> VocabularyEncoder<B> in
            let text = try model?.text ?? CLIP.load(clip, backend: backend).text
            return VocabularyEncoder(text: text, tokenizer: try tokenizer ?? CLIPTokenizer.forModel(clip), templates: words.templates)
        }, progress: { done, total in progress.bar("encoding the vocabulary", done: done, total: total, unit: "prompts") })
        progress.clear()
        if let damage = result.1.cacheDamage { printError("warning: vocabulary cache \(result.1.cacheFile ?? ""): \(damage); encoded again") }
        if let failure = result.1.cacheWriteError { printError("warning: the vocabulary cache was not updated: \(failure)") }
        return result
    }
}
