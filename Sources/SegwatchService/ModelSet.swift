import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchDINOv2
import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor
import SegwatchUSE

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
    public let head: LearnedHead<CPUBackend>?

    /// Loads SAM from `sam`, CLIP from `clip`, the head from `head` and DINOv2 from `dino`, on
    /// `engine`. A head file of the USE format (`segwatch-use-head/1`) needs `dino`; one of the
    /// first format (`proj.weight` only) does not. `warn` hears about a head that names no
    /// checkpoints.
    public init(sam: String, clip: String, head: String? = nil, dino: String? = nil, engine: CPUEngine,
                warn: (String) -> Void = { _ in }) throws {
        backend = CPUBackend(engine: engine)
        self.sam = try Sam(contentsOf: sam, backend: backend)
        let model = try CLIP.load(clip, backend: backend)
        self.clip = model
        clipPath = clip
        tokenizer = try CLIPTokenizer.forModel(clip)
        let backend = backend
        self.head = try head.map { path throws -> LearnedHead<CPUBackend> in
            guard try StateDict.load(path).metadata["format"] != nil else {
                guard dino == nil else { throw ServiceError("--dino \(dino!): the head \(path) is a linear head of CLIP's features (no 'format' in its metadata): it reads no DINOv2") }
                return .linear(try SegmentHead(contentsOf: path))
            }
            let use = try UseHead(contentsOf: path)
            guard let dino else {
                throw ServiceError("the head \(path) reads DINOv2's layers \(use.dinoLevels): give the DINOv2 model it was trained with (--dino, or [engine] dino)")
            }
            return try LearnedHead.use(use, dino: try Dinov2Model.load(dino, backend: backend), clip: model, clipDigest: hexDigest(try CLIPFiles.digest(clip)),
                                       dinoDigest: hexDigest(try DINOv2Files.digest(dino)), warn: warn)
        }
        if self.head == nil, let dino { throw ServiceError("--dino \(dino) is read by a USE head: give --head too") }
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
