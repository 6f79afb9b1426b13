import SegwatchBackends
import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchPipeline
import SegwatchTensor

/// A vocabulary's label embeddings and its classifier, from CLIP's text side alone: what the
/// labeling of frames uses (`ModelSet.labeler`) and what relabeling stored tracks uses.
public struct VocabularyEmbedder: Sendable {
    public let clip: CLIP<ComputeBackend>
    /// The CLIP folder or file: its content digest keys the vocabulary cache.
    public let clipPath: String
    public let tokenizer: CLIPTokenizer

    public init(clip: CLIP<ComputeBackend>, clipPath: String, tokenizer: CLIPTokenizer) {
        (self.clip, self.clipPath, self.tokenizer) = (clip, clipPath, tokenizer)
    }

    /// Loads CLIP and its tokenizer from `clipPath`.
    public init(clipPath: String, backend: ComputeBackend) throws {
        self.init(clip: try CLIP.load(clipPath, backend: backend), clipPath: clipPath, tokenizer: try CLIPTokenizer.forModel(clipPath))
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

    /// The labels' embeddings and, with `background`, the background prompts' (`BackgroundPrompts`,
    /// less the words the vocabulary names), which give "none of these" a place. Every prompt is
    /// checked against the model's context first.
    public func labelsAndBackground(_ vocabulary: Vocabulary, templates: PromptTemplates, background: Bool, cache: VocabularyCache?,
                                    progress: ((Int, Int) -> Void)? = nil,
                                    warn: (String) -> Void = { _ in }) throws -> (labels: LabelEmbeddings, background: LabelEmbeddings?) {
        try VocabularyEncoder<ComputeBackend>.check(vocabulary.labels, templates: templates, tokenizer: tokenizer, context: clip.text.contextLength)
        let labels = try embeddings(vocabulary, templates: templates, cache: cache, progress: progress, warn: warn)
        let names = background ? BackgroundPrompts.names(excluding: vocabulary.labels) : []
        let backgroundLabels = try names.enumerated().map { try VocabularyLabel(parsing: $1, origin: "background prompt \($0 + 1)") }
        let backgroundEmbeddings = try backgroundLabels.isEmpty
            ? nil : embeddings(try Vocabulary(backgroundLabels), templates: templates, cache: cache, warn: warn)
        return (labels, backgroundEmbeddings)
    }
}
