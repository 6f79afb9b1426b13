import SegwatchBackends
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
    public let backend: ComputeBackend
    public let sam: Sam<ComputeBackend>
    public let clip: CLIP<ComputeBackend>
    /// CLIP's text side, for vocabularies.
    public let text: VocabularyEmbedder
    public let head: LearnedHead<ComputeBackend>?

    /// Loads SAM from `sam`, CLIP from `clip`, the head from `head` and DINOv2 from `dino`, on
    /// `backend`. A head file of the USE format (`segwatch-use-head/1`) needs `dino`; one of the
    /// first format (`proj.weight` only) does not. `warn` hears about a head that names no
    /// checkpoints.
    public init(sam: String, clip: String, head: String? = nil, dino: String? = nil, backend: ComputeBackend,
                warn: (String) -> Void = { _ in }) throws {
        self.backend = backend
        self.sam = try Sam(contentsOf: sam, backend: backend)
        let model = try CLIP.load(clip, backend: backend)
        self.clip = model
        text = VocabularyEmbedder(clip: model, clipPath: clip, tokenizer: try CLIPTokenizer.forModel(clip))
        self.head = try Self.loadHead(head, dino: dino, clip: model, clipPath: clip, backend: backend, warn: warn)
    }

    /// The segment head at `path` (nil without one) over `clip` (loaded from `clipPath`): a
    /// linear head of CLIP's features, or the USE head with the DINOv2 model at `dino` it reads.
    public static func loadHead(_ path: String?, dino: String?, clip: CLIP<ComputeBackend>, clipPath: String, backend: ComputeBackend,
                                warn: (String) -> Void = { _ in }) throws -> LearnedHead<ComputeBackend>? {
        guard let path else {
            if let dino { throw ServiceError("--dino \(dino) is read by a USE head: give --head too") }
            return nil
        }
        guard try StateDict.load(path).metadata["format"] != nil else {
            guard dino == nil else { throw ServiceError("--dino \(dino!): the head \(path) is a linear head of CLIP's features (no 'format' in its metadata): it reads no DINOv2") }
            return .linear(try SegmentHead(contentsOf: path))
        }
        let use = try UseHead(contentsOf: path)
        guard let dino else {
            throw ServiceError("the head \(path) reads DINOv2's layers \(use.dinoLevels): give the DINOv2 model it was trained with (--dino, or [engine] dino)")
        }
        return try LearnedHead.use(use, dino: try Dinov2Model.load(dino, backend: backend), clip: clip, clipDigest: hexDigest(try CLIPFiles.digest(clipPath)),
                                   dinoDigest: hexDigest(try DINOv2Files.digest(dino)), warn: warn)
    }

    /// A labeler of `vocabulary` over these models; with `background`, the background prompts
    /// (`BackgroundPrompts`, less the words the vocabulary names) give "none of these" a place.
    public func labeler(vocabulary: Vocabulary, templates: PromptTemplates, background: Bool, options: LabelerOptions,
                        cache: VocabularyCache?, progress: ((Int, Int) -> Void)? = nil,
                        warn: (String) -> Void = { _ in }) throws -> ImageLabeler<ComputeBackend> {
        let (labels, backgroundEmbeddings) = try text.labelsAndBackground(vocabulary, templates: templates, background: background, cache: cache,
                                                                          progress: progress, warn: warn)
        return try ImageLabeler(sam: sam, clip: clip, backend: backend, labels: labels, background: backgroundEmbeddings,
                                head: head, options: options)
    }
}
