import Foundation
import SegwatchCLIP
import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor

/// The models a process loads once and every stream shares: SAM, CLIP and the optional segment
/// head, on one backend (one engine, one core budget). Each stream gets a labeler of its own
/// vocabulary over them (`labeler(...)`).
public final class ModelSet: Sendable {
    public let backend: CPUBackend
    public let sam: Sam<CPUBackend>
    public let clip: CLIP<CPUBackend>
    /// The CLIP folder or file: its content digest keys the vocabulary cache.
    public let clipPath: String
    public let tokenizer: CLIPTokenizer
    public let head: SegmentHead?

    /// Loads SAM from `sam`, CLIP from `clip` and the head from `head`, on `engine`.
    public init(sam: String, clip: String, head: String? = nil, engine: CPUEngine) throws {
        backend = CPUBackend(engine: engine)
        self.head = try head.map { try SegmentHead(contentsOf: $0) }
        self.sam = try Sam(contentsOf: sam, backend: backend)
        self.clip = try CLIP.load(clip, backend: backend)
        clipPath = clip
        tokenizer = try CLIPTokenizer.forModel(clip)
    }

    /// The embeddings of `vocabulary` under `templates`: from `cache` where it has them, the
    /// rest encoded (`progress(done, total)` follows the prompts) and added to it. Trouble with
    /// the cache is a warning, never a failure.
    public func embeddings(_ vocabulary: Vocabulary, templates: PromptTemplates, cache: VocabularyCache?,
                           progress: ((Int, Int) -> Void)? = nil, warn: (String) -> Void = { _ in }) throws -> LabelEmbeddings {
        let digest = try CLIPFiles.digest(clipPath, memo: cache?.digestMemo)
        let (embeddings, report) = try embedVocabulary(vocabulary, templates: templates, modelDigest: digest, cache: cache, encoder: {
            VocabularyEncoder(text: clip.text, tokenizer: tokenizer, templates: templates)
        }, progress: progress)
        if let damage = report.cacheDamage { warn("vocabulary cache \(report.cacheFile ?? ""): \(damage); encoded again") }
        if let failure = report.cacheWriteError { warn("the vocabulary cache was not updated: \(failure)") }
        return embeddings
    }

    /// A labeler of `vocabulary` over these models; with `background`, the background prompts
    /// (`BackgroundPrompts`, less the words the vocabulary names) give "none of these" a place.
    public func labeler(vocabulary: Vocabulary, templates: PromptTemplates, background: Bool, options: LabelerOptions,
                        cache: VocabularyCache?, progress: ((Int, Int) -> Void)? = nil,
                        warn: (String) -> Void = { _ in }) throws -> ImageLabeler<CPUBackend> {
        try VocabularyEncoder<CPUBackend>.check(vocabulary.labels, templates: templates, tokenizer: tokenizer, context: clip.text.contextLength)
        let labels = try embeddings(vocabulary, templates: templates, cache: cache, progress: progress, warn: warn)
        let names = background ? BackgroundPrompts.names(excluding: vocabulary.labels) : []
        let backgroundLabels = try names.enumerated().map { try VocabularyLabel(parsing: $1, origin: "background prompt \($0 + 1)") }
        let backgroundEmbeddings = try backgroundLabels.isEmpty
            ? nil : embeddings(try Vocabulary(backgroundLabels), templates: templates, cache: cache, warn: warn)
        return try ImageLabeler(sam: sam, clip: clip, backend: backend, labels: labels, background: backgroundEmbeddings,
                                head: head, options: options)
    }
}
