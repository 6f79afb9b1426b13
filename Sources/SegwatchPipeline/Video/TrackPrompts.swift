// Between keyframes each live track is segmented again by prompting SAM's mask decoder with
// where the track is expected: its box moved on by its motion, a point inside it, and the low
// resolution logits of its last prompted mask, as SAM's interactive loop feeds a mask back.
import SegwatchSAM
import SegwatchTensor
import Synchronization

/// One track's prompt on a new frame, in the frame's pixels.
public struct TrackPrompt: Sendable {
    public var track: Int
    /// `(x0, y0, x1, y1)`, edges (not inclusive pixel bounds).
    public var box: (x0: Double, y0: Double, x1: Double, y1: Double)
    public var point: (x: Double, y: Double)
    /// `[1, 256, 256]` logits of the track's previous prompted mask, if it has one.
    public var lowResLogits: Tensor?

    public init(track: Int, box: (x0: Double, y0: Double, x1: Double, y1: Double), point: (x: Double, y: Double), lowResLogits: Tensor?) {
        (self.track, self.box, self.point, self.lowResLogits) = (track, box, point, lowResLogits)
    }

    /// The prompt for `track` on the next frame: its last mask's box moved by its velocity and
    /// kept inside the frame, and the mask pixel nearest the moved centroid (a centroid can
    /// fall outside a ring or a crescent).
    init(_ track: Track, lowResLogits: Tensor?) {
        let (mask, box) = (track.mask, track.box)
        let frames = Double(track.sinceReference + 1)
        let dx = (track.velocity.x * frames).rounded(), dy = (track.velocity.y * frames).rounded()
        let (w, h) = (Double(mask.width), Double(mask.height))
        self.track = track.id
        self.box = (min(max(Double(box.x0) + dx, 0), w - 1), min(max(Double(box.y0) + dy, 0), h - 1),
                    min(max(Double(box.x1 + 1) + dx, 1), w), min(max(Double(box.y1 + 1) + dy, 1), h))
        var best = (x: box.x0, y: box.y0), bestDistance = Double.infinity
        mask.pixels.withUnsafeBufferPointer { pixels in
            for y in box.y0...box.y1 {
                for x in box.x0...box.x1 where pixels[y * mask.width + x] != 0 {
                    let d = (Double(x) - box.centroid.x) * (Double(x) - box.centroid.x) + (Double(y) - box.centroid.y) * (Double(y) - box.centroid.y)
                    if d < bestDistance { (best, bestDistance) = ((x, y), d) }
                }
            }
        }
        point = (min(max(Double(best.x) + dx, 0), w - 1) + 0.5, min(max(Double(best.y) + dy, 0), h - 1) + 0.5)
        self.lowResLogits = lowResLogits
    }
}

/// A track's mask on the new frame, with the logits to feed back on the next one.
public struct PromptedMask: Sendable {
    /// The track that prompted it.
    public var track: Int
    /// Its area is 0 when the decoder found nothing.
    public var mask: GeneratedMask
    public var binary: BinaryMask
    /// Nil when the mask is empty.
    public var box: MaskBox?
    /// `[1, 256, 256]`.
    public var lowResLogits: Tensor
}

/// Every prompt decoded against one encoded frame (prompts of one shape share a decoder batch;
/// the image side is computed once): each prompt's predicted IoU, and the masks of the prompts
/// whose predicted IoU reaches `minimumIoU`, in prompt order. On the host only those are
/// upsampled to the frame, side by side, a prompt per thread; on a device the masks are made
/// there, a batch at a time, and come back as bits. Where the time went is added to `timings`.
public func segmentTracks<B: Backend>(_ prompts: [TrackPrompt], predictor: SamPredictor<B>, features: SamImageFeatures<B.Value>,
                                      stabilityOffset: Double, minimumIoU: Double,
                                      timings: inout GeneratorTimings) throws -> (predictedIoUs: [Float], kept: [PromptedMask]) {
    guard !prompts.isEmpty else { return ([], []) }
    let model = predictor.model, backend = model.backend
    let (height, width) = features.originalSize
    func transformed(_ x: Double, _ y: Double) -> (x: Double, y: Double) {
        predictor.transform.apply(x: x, y: y, originalHeight: height, originalWidth: width)
    }
    let samPrompts = prompts.map { prompt in
        let p = transformed(prompt.point.x, prompt.point.y)
        let a = transformed(prompt.box.x0, prompt.box.y0), b = transformed(prompt.box.x1, prompt.box.y1)
        return SamPrompt(points: [(p.x, p.y, 1)], box: (a.x, a.y, b.x, b.y), maskInput: prompt.lowResLogits)
    }
    var start = ContinuousClock.now
    timings.prompts += samPrompts.count
    let out = try model.decode(features.embedding, prompts: samPrompts, multimask: false)
    let ious = backend.download(out.iouPredictions).contiguous()
    let lowRes = backend.download(out.lowResLogits).contiguous()
    timings.decoder += start.duration(to: .now)
    start = .now
    defer { timings.masks += start.duration(to: .now) }
    let upscaling = predictor.maskUpscaling(features)
    let side = upscaling.lowResCount
    let predicted = (0..<prompts.count).map { ious.pointer[$0] }
    let selected = prompts.indices.filter { Double(predicted[$0]) >= minimumIoU }
    /// Prompt `b`'s mask, its RLE (nil: made of `binary`) and stability score.
    @Sendable func prompted(_ b: Int, binary: BinaryMask, rle: RLE?, stability: Float) -> PromptedMask {
        // One pass gives the box and the area; the official empty box is [0, 0, 0, 0].
        let box = MaskBox(binary)
        let point = SIMD2(prompts[b].point.x, prompts[b].point.y)
        let mask = GeneratedMask(rle: rle ?? maskToRLE(binary), area: box?.area ?? 0, box: box.map { [$0.x0, $0.y0, $0.x1, $0.y1] } ?? [0, 0, 0, 0],
                                 predictedIou: predicted[b], pointCoords: point, stabilityScore: stability, cropBox: [0, 0, width, height])
        let feedback = Tensor(shape: [1, lowRes.shape[2], lowRes.shape[3]],
                              values: Array(UnsafeBufferPointer(start: lowRes.pointer + b * side, count: side)))
        return PromptedMask(track: prompts[b].track, mask: mask, binary: binary, box: box, lowResLogits: feedback)
    }
    if backend.isDevice {
        // Upscaled, thresholded and counted on the device, a few prompts at a time; bits come back.
        var kept: [PromptedMask] = []
        let isKept = { (b: Int) in Double(predicted[b]) >= minimumIoU }
        let made = predictor.maskBits(out.lowResLogits, features: features, stabilityOffset: stabilityOffset, including: isKept) { range, bits in
            for b in range where isKept(b) {
                let plane = b - range.lowerBound
                kept.append(prompted(b, binary: BinaryMask(bits, plane: plane), rle: rleAndBox(bits, plane: plane).rle,
                                     stability: stabilityScore(bits, plane: plane)))
            }
        }
        if made { return (predicted, kept) }
    }
    let found = Mutex([PromptedMask?](repeating: nil, count: selected.count))
    backend.concurrently(selected.count) { k in
        let b = selected[k]
        let logits = Tensor(uninitialized: [upscaling.outputCount]), scratch = Tensor(uninitialized: [upscaling.scratchCount])
        upscaling.apply(lowRes.pointer + b * side, into: logits.pointer, scratch: scratch.pointer)
        let values = UnsafeBufferPointer(start: logits.pointer, count: upscaling.outputCount)
        let stability = calculateStabilityScore(logits: values, height: height, width: width, maskThreshold: 0,
                                                thresholdOffset: stabilityOffset)
        let mask = prompted(b, binary: BinaryMask(logits: values, height: height, width: width, threshold: 0), rle: nil, stability: stability)
        found.withLock { $0[k] = mask }
    }
    return (predicted, found.withLock { $0.map { $0! } })
}
