// The per-frame analysis of a video: keyframes are segmented by the automatic mask generator;
// between them each live track is segmented again by prompting the decoder with where it is
// expected (`TrackPrompt`), all tracks in one batch against the frame's embedding, and a sparse
// point grid over what no track covers finds new objects. Every segment is embedded on the
// frame's CLIP features, classified, and handed to the tracker. Between keyframes a tracked
// segment keeps its last embedding while its label cannot be in doubt (its mask much as when
// it was embedded, its track's vote settled on it, not embedded too long ago): CLIP's dense features,
// the larger part of a tracked frame, are computed only on frames where some segment needs them.
import SegwatchCLIP
import SegwatchSAM
import SegwatchTensor

public struct AnalyzerOptions: Sendable, Equatable {
    /// A keyframe every this many analyzed frames (1: every frame is one).
    public var keyframeEvery = 10
    /// Points per side of the grid that looks for new objects between keyframes (0: none).
    public var discoveryGrid = 8
    /// A track's prompted mask is kept when its predicted IoU is at least this.
    public var trackedMinimumIoU = 0.5
    /// The next frame is a keyframe when the prompted masks' mean predicted IoU falls below this ...
    public var keyframeBelowIoU = 0.7
    /// ... or when the segments cover less than this fraction of what the last keyframe's did ...
    public var keyframeBelowCoverage = 0.6
    /// ... and this one is, when its luma histogram is this far (0...1) from the previous
    /// analyzed frame's: a scene cut.
    public var sceneCut = 0.5
    /// A new object found between keyframes may overlap the tracked masks by at most this
    /// fraction of its area; more, and it is a piece of a tracked object.
    public var discoveryMaximumOverlap = 0.5
    /// Two prompted masks overlapping by this IoU are one object: the older track keeps it.
    public var duplicateIoU = 0.8
    /// Segments per frame at most (the best predicted IoU first on a keyframe; new objects
    /// only up to it between keyframes): what a frame costs stays bounded.
    public var maximumSegments = 200
    /// Every segment embedded on every frame, as a keyframe's are; otherwise a tracked segment
    /// keeps its track's last embedding and scores unless its mask's IoU with the mask then
    /// embedded falls below `reembedBelowIoU`, its track's vote is unsettled (embedded on
    /// fewer than `settleAfter` frames, or its last embedding, repeated, would change the
    /// voted label), or it was embedded `reembedEvery` analyzed frames ago.
    public var embedEveryFrame = false
    public var reembedBelowIoU = 0.8
    public var reembedEvery = 10
    public var settleAfter = 3
    /// Between keyframes, CLIP's dense features are computed on a window of whole patches
    /// around the segments embedded (two patches of context on each side), at the frame's
    /// scale and positions, when it is at most half the frame's patches: attention is quadratic
    /// in the tokens, so half the patches cost about a third. Off: the whole frame.
    public var denseWindow = true
    /// A keyframe's point grid is decoded over this many analyzed frames, a slice each, beside
    /// the tracks' prompts, so that no frame waits for a whole keyframe (1: whole keyframes).
    /// Each slice's new objects join as the discovery grid's do; the keyframe ends with the
    /// last slice.
    public var keyframeSlices = 1
    /// A keyframe prompts the live tracks first, and decodes only the grid's points that their
    /// masks leave uncovered: the tracks' masks stand in for the generator's there (see
    /// `SamAutomaticMaskGenerator.generate(features:known:binaries:timings:)`); a sliced
    /// keyframe's slices leave out the points the frame's tracked masks cover.
    public var keyframeTrackPrompts = false
    public var tracker = TrackerOptions()
    /// Labels of background classes: their segments are reported, not tracked.
    public var stuff: Set<Int> = []

    public init() {}

    public func validate() throws(PipelineError) {
        func check(_ ok: Bool, _ message: String) throws(PipelineError) { if !ok { throw .mismatch(message) } }
        try check((1...100_000).contains(keyframeEvery), "the keyframe interval must be in 1...100000, not \(keyframeEvery)")
        try check((1...10_000).contains(maximumSegments), "the segments per frame must be in 1...10000, not \(maximumSegments)")
        try check((0...64).contains(discoveryGrid), "the discovery grid must be in 0...64 points per side, not \(discoveryGrid)")
        for (name, value) in [("tracked minimum IoU", trackedMinimumIoU), ("keyframe IoU", keyframeBelowIoU),
                              ("keyframe coverage", keyframeBelowCoverage), ("scene cut", sceneCut),
                              ("discovery overlap", discoveryMaximumOverlap), ("duplicate IoU", duplicateIoU),
                              ("re-embedding IoU", reembedBelowIoU)] {
            try check((0...1).contains(value), "the \(name) must be in 0...1, not \(value)")
        }
        try check((1...100_000).contains(tracker.maxAge), "the maximum age must be in 1...100000, not \(tracker.maxAge)")
        try check((1...100_000).contains(reembedEvery), "the re-embedding interval must be in 1...100000, not \(reembedEvery)")
        try check((1...100_000).contains(settleAfter), "the embeddings before a vote settles must be in 1...100000, not \(settleAfter)")
        try check((1...1024).contains(keyframeSlices), "the keyframe slices must be in 1...1024, not \(keyframeSlices)")
    }
}

/// Why a frame was a keyframe.
public enum KeyframeReason: String, Sendable, CaseIterable {
    case first, interval, sceneCut = "scene_cut", coverage, iou
}

/// Where one analyzed frame's time went, in milliseconds.
public struct AnalyzerTimings: Sendable, Equatable {
    public var samEncoder = 0.0
    public var clipDense = 0.0
    /// DINOv2 on the frame (with a USE head), resize included.
    public var dino = 0.0
    /// The mask decoder's arithmetic: the generator's points on keyframes, the track prompts and
    /// the discovery grid between them.
    public var decoder = 0.0
    /// The masks made of its logits: upscaling to the frame, thresholds, stability, RLE, NMS,
    /// and matching them with the tracks.
    public var masks = 0.0
    public var embed = 0.0
    public var classify = 0.0
    public var track = 0.0

    public var total: Double { samEncoder + clipDense + dino + decoder + masks + embed + classify + track }

    public init() {}

    /// Moves the DINOv2 pass out of `clipDense`, which timed both.
    mutating func separateDINOv2(_ features: DenseFeatures?) {
        let dino = features?.head?.dinoMilliseconds ?? 0
        (self.dino, clipDense) = (self.dino + dino, clipDense - dino)
    }

    public static func += (a: inout AnalyzerTimings, b: AnalyzerTimings) {
        a.samEncoder += b.samEncoder; a.clipDense += b.clipDense; a.dino += b.dino; a.decoder += b.decoder; a.masks += b.masks
        a.embed += b.embed; a.classify += b.classify; a.track += b.track
    }
}

/// A segment of an analyzed frame.
public struct AnalyzedSegment: Sendable {
    public var mask: GeneratedMask
    public var classification: Classification
    /// Nil for a stuff segment, which is not tracked.
    public var track: Int?
    /// The track's voted label after this frame (nil: unknown, or a stuff segment). It can
    /// differ from the segment's own best label this frame, which one noisy frame can flip.
    public var trackLabel: Int?
    /// The pts of the frame whose embedding `classification` came from: this frame's, or an
    /// earlier one's for a tracked segment that kept its track's last embedding.
    public var scoredPts: Double
    /// The embedding `classification` came from (this frame's, or the carried one).
    public var embedding: [Float]
}

public struct FrameAnalysis: Sendable {
    /// Objects (with their track) and stuff, in the order they were found.
    public var segments: [AnalyzedSegment]
    public var events: [TrackEvent]
    /// Nil for a frame between keyframes; with sliced keyframes, set on the frame of the first slice.
    public var keyframe: KeyframeReason?
    /// With sliced keyframes: the slice this frame decoded (1-based) and the slices in all.
    public var keyframeSlice: (index: Int, count: Int)?
    /// On the frame of a sliced keyframe's last slice: every slice's masks after the
    /// generator's NMS across them (on a still picture, a whole keyframe's masks).
    public var slicedKeyframeMasks: [GeneratedMask]?
    /// The prompts the mask decoder ran on: grid points, track prompts, discovery points.
    public var prompts = 0
    /// The fraction of the frame the segments cover.
    public var coverage: Double
    public var timings: AnalyzerTimings
}

/// Analyzes a video's frames in order; its state is the tracks and what they were last prompted with.
public struct VideoAnalyzer<B: Backend>: Sendable {
    public let labeler: ImageLabeler<B>
    public let options: AnalyzerOptions
    public private(set) var tracker: Tracker
    private let generator: SamAutomaticMaskGenerator<B>
    /// Each track's last prompted low-resolution logits, fed back on the next frame.
    private var feedback: [Int: Tensor] = [:]
    private var sinceKeyframe = 0
    private var keyframeCoverage = 0.0
    private var pending: KeyframeReason? = .first
    private var previousHistogram: [Float]?
    /// Each live track's last embedded segment.
    private var embedded: [Int: EmbeddedSegment] = [:]
    /// The sliced keyframe under way.
    private var slices: GridSlices<B>?

    /// A segment as it was embedded and classified, kept for its track's later frames.
    private struct EmbeddedSegment {
        var mask: BinaryMask
        var box: MaskBox
        var embedding: [Float]
        var classification: Classification
        var pts: Double
        /// Analyzed frames since.
        var age = 0
        /// The track's embeddings so far, this one included.
        var count: Int
    }

    /// - Parameter trackIDs: where new tracks get their ids (default: from 1).
    public init(labeler: ImageLabeler<B>, options: AnalyzerOptions, trackIDs: (any TrackIDSource)? = nil) throws {
        try options.validate()
        self.labeler = labeler
        self.options = options
        tracker = Tracker(options: options.tracker, ids: trackIDs)
        generator = try SamAutomaticMaskGenerator(predictor: SamPredictor(model: labeler.sam), options: labeler.options.generator)
        if options.keyframeSlices > 1, generator.options.cropNLayers > 0 {
            throw PipelineError.mismatch("keyframes with crop layers (crop-n-layers \(generator.options.cropNLayers)) cannot be sliced: "
                + "use one keyframe slice")
        }
    }

    /// What the image encoders make of one frame: it depends on the picture alone, not on the
    /// tracks, so a pipeline can compute it a frame ahead of the analysis.
    public struct EncodedFrame: Sendable {
        public let picture: RGBImage
        let features: SamImageFeatures<B.Value>
        /// Nil unless every frame is embedded: the analysis computes them when some segment
        /// needs them.
        let dense: DenseFeatures?
        let timings: AnalyzerTimings
    }

    /// The SAM encoder on `picture`, and CLIP's dense features when every frame is embedded.
    public func encode(_ picture: RGBImage) throws -> EncodedFrame {
        try labeler.backend.runOnHost { () throws -> EncodedFrame in try encodeOnHost(picture) }
    }

    private func encodeOnHost(_ picture: RGBImage) throws -> EncodedFrame {
        var timings = AnalyzerTimings()
        let features = try timed(&timings, \.samEncoder) { () throws -> SamImageFeatures<B.Value> in
            let features = try generator.predictor.setImage(picture)
            generator.predictor.model.backend.synchronize()  // the encoder's time, not the decoder's
            return features
        }
        let dense = options.embedEveryFrame ? timed(&timings, \.clipDense) { labeler.denseFeatures(picture) } : nil
        timings.separateDINOv2(dense)
        return EncodedFrame(picture: picture, features: features, dense: dense, timings: timings)
    }

    public mutating func analyze(_ picture: RGBImage, pts: Double) throws -> FrameAnalysis {
        try analyze(encode(picture), pts: pts)
    }

    /// The frame's segments (a keyframe's generator, or the tracks re-prompted and the
    /// discovery grid), labeled and tracked.
    public mutating func analyze(_ encoded: EncodedFrame, pts: Double) throws -> FrameAnalysis {
        let backend = labeler.backend
        return try backend.runOnHost { () throws -> FrameAnalysis in try analyzeOnHost(encoded, pts: pts) }
    }

    private mutating func analyzeOnHost(_ encoded: EncodedFrame, pts: Double) throws -> FrameAnalysis {
        let picture = encoded.picture
        var timings = encoded.timings
        let histogram = lumaHistogram(picture)
        // While a sliced keyframe is under way only a scene cut starts another.
        var reason = slices == nil ? pending : nil
        if reason == nil, let previous = previousHistogram, histogramDistance(previous, histogram) > options.sceneCut { reason = .sceneCut }
        if reason == nil, slices == nil, sinceKeyframe + 1 >= options.keyframeEvery { reason = .interval }
        previousHistogram = histogram
        pending = nil
        let whole = reason != nil && options.keyframeSlices == 1
        if reason != nil, !whole { slices = try GridSlices(generator: generator, slices: options.keyframeSlices) }

        var generated = GeneratorTimings()
        let segmenting = ContinuousClock.now
        let segmentation = try segment(picture, features: encoded.features, keyframe: reason, whole: whole, timings: &generated)
        let (masks, binaries, boxes) = (segmentation.masks, segmentation.binaries, segmentation.boxes)
        let (lowRes, prompters) = (segmentation.lowRes, segmentation.prompters)
        timings.decoder += generated.decoder / .milliseconds(1)
        timings.masks += (segmenting.duration(to: .now) - generated.decoder) / .milliseconds(1)

        // The tracked segments whose label cannot be in doubt keep their last embedding; the
        // others are embedded on this frame's dense features, computed only if there are any.
        let tracks = Dictionary(uniqueKeysWithValues: tracker.tracks.map { ($0.id, $0) })
        let kept = masks.indices.map { i in
            reason == nil ? keptEmbedding(prompters[i], binaries[i], boxes[i], tracks: tracks) : nil
        }
        let fresh = masks.indices.filter { kept[$0] == nil }
        var embeddings = kept.map { $0?.embedding }
        var classifications = kept.map { $0?.classification }
        if !fresh.isEmpty {
            let window = reason == nil && options.denseWindow && labeler.computesWindows
                ? denseWindow(around: fresh.compactMap { boxes[$0] }, frame: (picture.height, picture.width)) : nil
            let dense = encoded.dense ?? {
                let dense = timed(&timings, \.clipDense) { labeler.denseFeatures(picture, window: window) }
                timings.separateDINOv2(dense)
                return dense
            }()
            let computed = try timed(&timings, \.embed) { try labeler.embedder.embed(dense, masks: fresh.map { masks[$0].rle }) }
            for (i, embedding) in zip(fresh, computed) { embeddings[i] = embedding }
            let scored = fresh.filter { embeddings[$0] != nil }
            let results = try timed(&timings, \.classify) { try labeler.classifier.classify(scored.map { embeddings[$0]! }) }
            for (i, result) in zip(scored, results) { classifications[i] = result }
        }
        let present = embeddings.indices.filter { embeddings[$0] != nil }

        // Segments follow `present`; the objects among them (not stuff) go to the tracker.
        var segments: [AnalyzedSegment] = [], objects: [Int] = [], observations: [TrackerObservation] = []
        for i in present {
            let classification = classifications[i]!
            if !(classification.label.map(options.stuff.contains) ?? false) {
                objects.append(segments.count)
                observations.append(TrackerObservation(mask: binaries[i], embedding: embeddings[i]!, classification: classification))
            }
            segments.append(AnalyzedSegment(mask: masks[i], classification: classification, track: nil, trackLabel: nil,
                                            scoredPts: kept[i]?.pts ?? pts, embedding: embeddings[i]!))
        }
        let update = timed(&timings, \.track) { tracker.update(observations, pts: pts) }
        var nextFeedback: [Int: Tensor] = [:]
        let votedLabels = Dictionary(uniqueKeysWithValues: tracker.tracks.map { ($0.id, $0.label) })
        var nextEmbedded: [Int: EmbeddedSegment] = [:]
        for (s, track) in zip(objects, update.tracks) {
            segments[s].track = track
            segments[s].trackLabel = track.flatMap { votedLabels[$0] ?? nil }
            guard let track else { continue }
            let i = present[s]
            if let logits = lowRes[i] { nextFeedback[track] = logits }
            if var last = kept[i] {
                last.age += 1
                nextEmbedded[track] = last
            } else if let box = boxes[i] {
                nextEmbedded[track] = EmbeddedSegment(mask: binaries[i], box: box, embedding: embeddings[i]!,
                                                      classification: classifications[i]!, pts: pts,
                                                      count: (embedded[track]?.count ?? 0) + 1)
            }
        }
        feedback = nextFeedback
        embedded = nextEmbedded

        let coverage = Double(coveredPixels(present.map { binaries[$0] }, height: picture.height, width: picture.width).reduce(0) { $0 + Int($1) })
            / Double(max(picture.height * picture.width, 1))
        if whole || segmentation.slicedKeyframeMasks != nil {
            sinceKeyframe = 0
            keyframeCoverage = coverage
        } else if slices == nil {
            sinceKeyframe += 1
            if segmentation.meanIoU < options.keyframeBelowIoU {
                pending = .iou
            } else if coverage < options.keyframeBelowCoverage * keyframeCoverage {
                pending = .coverage
            }
        }
        return FrameAnalysis(segments: segments, events: update.events, keyframe: reason, keyframeSlice: segmentation.keyframeSlice,
                             slicedKeyframeMasks: segmentation.slicedKeyframeMasks, prompts: generated.prompts, coverage: coverage,
                             timings: timings)
    }

    /// A frame's masks before they are labeled, each with its box (nil: empty), the logits to
    /// feed back to its track and the track that prompted it (nil: the generator's, or a new
    /// object's).
    private struct Segmentation {
        var masks: [GeneratedMask] = [], binaries: [BinaryMask] = [], boxes: [MaskBox?] = [], lowRes: [Tensor?] = []
        var prompters: [Int?] = []
        /// The tracks' prompts' mean predicted IoU (1 without any).
        var meanIoU = 1.0
        var keyframeSlice: (index: Int, count: Int)?
        var slicedKeyframeMasks: [GeneratedMask]?

        mutating func append(_ mask: GeneratedMask, _ binary: BinaryMask, box: MaskBox?, lowRes: Tensor?, prompter: Int?) {
            masks.append(mask)
            binaries.append(binary)
            boxes.append(box)
            self.lowRes.append(lowRes)
            prompters.append(prompter)
        }
    }

    /// The frame's masks: a whole keyframe's generator (helped by the tracks' prompts if asked),
    /// or the live tracks re-prompted and then the keyframe's next slice or the discovery grid.
    private mutating func segment(_ picture: RGBImage, features: SamImageFeatures<B.Value>, keyframe reason: KeyframeReason?,
                                  whole: Bool, timings generated: inout GeneratorTimings) throws -> Segmentation {
        var segmentation = Segmentation()
        // After a scene cut the tracks are of another scene: they are left to age out.
        let prompts = reason == .sceneCut || (whole && !options.keyframeTrackPrompts) ? []
            : tracker.tracks.filter { $0.unseen == 0 }.map { TrackPrompt($0, lowResLogits: feedback[$0.id]) }
        let prompted = try segmentTracks(prompts, predictor: generator.predictor, features: features,
                                         stabilityOffset: labeler.options.generator.stabilityScoreOffset,
                                         minimumIoU: options.trackedMinimumIoU, timings: &generated)
        if whole {
            let tracked = prompted.kept.filter { $0.box != nil }
            var masks: [GeneratedMask], known: [Int?]
            if tracked.isEmpty {
                masks = try generator.generate(picture, features: features, timings: &generated)
                known = Array(repeating: nil, count: masks.count)
            } else {
                let found = try generator.generate(features: features, known: tracked.map(\.mask), binaries: tracked.map(\.binary),
                                                   timings: &generated)
                (masks, known) = (found.masks, found.known)
            }
            if masks.count > options.maximumSegments {
                let best = masks.indices.sorted { masks[$0].predictedIou > masks[$1].predictedIou }.prefix(options.maximumSegments).sorted()
                (masks, known) = (best.map { masks[$0] }, best.map { known[$0] })
            }
            for (mask, k) in zip(masks, known) {
                let binary = rleToMask(mask.rle)
                segmentation.append(mask, binary, box: MaskBox(binary), lowRes: k.map { tracked[$0].lowResLogits }, prompter: k.map { tracked[$0].track })
            }
            return segmentation
        }
        if !prompted.predictedIoUs.isEmpty {
            segmentation.meanIoU = prompted.predictedIoUs.reduce(0) { $0 + Double($1) } / Double(prompted.predictedIoUs.count)
        }
        for candidate in prompted.kept {
            guard let box = candidate.box else { continue }
            // Tracks are oldest first, so a later duplicate is the younger track's.
            let duplicate = zip(segmentation.binaries, segmentation.boxes).contains { kept, keptBox in
                keptBox.map { maskIoU(kept, $0, shiftedBy: (0, 0), candidate.binary, box) >= options.duplicateIoU } ?? false
            }
            guard !duplicate else { continue }
            segmentation.append(candidate.mask, candidate.binary, box: box, lowRes: candidate.lowResLogits, prompter: candidate.track)
        }
        // New objects: those of the keyframe's slice, or else of the discovery grid's points
        // that no tracked mask covers, where they overlap the tracked masks little.
        let covered = coveredPixels(segmentation.binaries, height: picture.height, width: picture.width)
        let proposals: [GeneratedMask]
        if var grid = slices {
            proposals = try grid.decodeNext(features: features, explained: options.keyframeTrackPrompts ? covered : nil,
                                            timings: &generated)
            segmentation.keyframeSlice = (grid.decoded, grid.count)
            if grid.isComplete {
                segmentation.slicedKeyframeMasks = grid.masks()
                slices = nil
            } else {
                slices = grid
            }
        } else {
            let n = options.discoveryGrid
            guard n > 0 else { return segmentation }
            let points = buildPointGrid(pointsPerSide: n).map { $0 * SIMD2(Double(picture.width), Double(picture.height)) }.filter {
                covered[pixelIndex(of: $0, height: picture.height, width: picture.width)] == 0
            }
            guard !points.isEmpty else { return segmentation }
            proposals = try generator.proposals(at: points, features: features, timings: &generated)
        }
        for found in proposals where segmentation.masks.count < options.maximumSegments {
            let binary = rleToMask(found.rle)
            let overlap = binary.pixels.withUnsafeBufferPointer { a in
                covered.withUnsafeBufferPointer { b in setPixels(a.baseAddress!, a.count, and: b.baseAddress!).both }
            }
            guard Double(overlap) <= options.discoveryMaximumOverlap * Double(found.area) else { continue }
            segmentation.append(found, binary, box: MaskBox(binary), lowRes: nil, prompter: nil)
        }
        return segmentation
    }

    /// The last embedding of the track that prompted `mask` (on a frame between keyframes), when
    /// it still stands for it: not with every frame embedded, and only while the mask is much as
    /// it was then, the embedding younger than `reembedEvery` frames, and the track's vote
    /// settled: it has heard `settleAfter` embeddings, and frames like the last keep its label.
    private func keptEmbedding(_ prompter: Int?, _ mask: BinaryMask, _ box: MaskBox?, tracks: [Int: Track]) -> EmbeddedSegment? {
        guard !options.embedEveryFrame, let prompter, let last = embedded[prompter], last.count >= options.settleAfter,
              last.age + 1 < options.reembedEvery,
              tracks[prompter]?.keepsLabel(last.classification, hysteresis: tracker.options.hysteresis) ?? false, let box,
              maskIoU(last.mask, last.box, shiftedBy: (0, 0), mask, box) >= options.reembedBelowIoU else { return nil }
        return last
    }

    /// The patches of the frame's dense grid that masks in `boxes` touch, two more on each side;
    /// nil when that is more than half the grid (the whole frame then costs little more).
    private func denseWindow(around boxes: [MaskBox], frame: (height: Int, width: Int)) -> PatchWindow? {
        let (height, width) = frame
        let grid = labeler.denseGrid(height: height, width: width)
        var (top, bottom, left, right) = (grid.h, 0, grid.w, 0)
        for box in boxes {
            // Patch i spans pixels [i H / gh, (i + 1) H / gh): pixels y0...y1 touch patches
            // floor(y0 gh / H) ..< ceil((y1 + 1) gh / H).
            top = min(top, box.y0 * grid.h / height)
            bottom = max(bottom, ((box.y1 + 1) * grid.h + height - 1) / height)
            left = min(left, box.x0 * grid.w / width)
            right = max(right, ((box.x1 + 1) * grid.w + width - 1) / width)
        }
        guard top < bottom, left < right else { return nil }
        let context = 2
        let rows = max(0, top - context)..<min(grid.h, bottom + context)
        let columns = max(0, left - context)..<min(grid.w, right + context)
        guard 2 * rows.count * columns.count <= grid.h * grid.w else { return nil }
        return PatchWindow(grid: grid, rows: rows, columns: columns)
    }

    /// Ends every live track (the end of the input).
    public mutating func finish(pts: Double) -> [TrackEvent] {
        feedback = [:]
        embedded = [:]
        slices = nil
        return tracker.finish(pts: pts)
    }
}
