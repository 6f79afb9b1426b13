import SegwatchCLIP
import SegwatchSAM
import SegwatchTensor

/// How segments become embeddings: a frame's dense features (CLIP's, with DINOv2's levels for
/// the USE head) pooled by each mask through the head, if any. The labeler's, and a search by
/// example's (`segwatch search --image`), so that a query picture is embedded exactly as the
/// segments of a run.
public struct SegmentEncoding<B: Backend>: Sendable {
    public let featurizer: FrameFeaturizer<B>
    public let embedder: any SegmentEmbedder

    public init(clip: CLIP<B>, backend: B, head: LearnedHead<B>?, clipSize: Int, dinoSize: Int) {
        switch head {
        case let .use(use, dino):
            embedder = UseHeadEmbedder(head: use)
            featurizer = FrameFeaturizer(clip: clip, backend: backend, clipSize: clipSize, clipLevels: use.clipLevels,
                                         dino: dino, dinoSize: dinoSize, dinoLevels: use.dinoLevels)
        case let .linear(linear):
            embedder = MaskPooledEmbedder(head: linear)
            featurizer = FrameFeaturizer(clip: clip, backend: backend, clipSize: clipSize)
        case nil:
            embedder = MaskPooledEmbedder()
            featurizer = FrameFeaturizer(clip: clip, backend: backend, clipSize: clipSize)
        }
    }

    /// The unit embedding of each of `masks` on `picture` (nil for a mask that covers nothing).
    public func embed(_ picture: RGBImage, masks: [RLE]) throws(PipelineError) -> [[Float]?] {
        let backend = featurizer.backend
        let features = backend.runOnHost { featurizer(picture) }
        return try embedder.embed(features, masks: masks)
    }
}
