@testable import SegwatchCLIP
import SegwatchMedia
@testable import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// The video analyzer's keyframe decisions and track prompts. The fixture models have random
/// weights, so what is checked is structure: which frames are keyframes and why, and that
/// tracked frames prompt the tracks.
struct VideoAnalyzerTests {
    private static let (width, height) = (64, 48)

    /// A picture of one gray level with a brighter square at `x`.
    private func picture(gray: UInt8, squareAt x: Int) -> RGBImage {
        var pixels = [UInt8](repeating: gray, count: Self.width * Self.height * 3)
        for y in 10..<30 {
            for column in x..<min(x + 20, Self.width) {
                for c in 0..<3 { pixels[(y * Self.width + column) * 3 + c] = gray &+ 90 }
            }
        }
        return RGBImage(height: Self.height, width: Self.width, pixels: pixels)
    }

    /// The fixture models with three random labels, or one label per embedding of `prototypes`;
    /// CLIP's `logitScale` replaced when given.
    private func analyzer(pointsPerSide: Int = 2, pointsPerBatch: Int = 64, boxNms: Double = 0.7, prototypes: [[Float]]? = nil,
                          logitScale: Float? = nil,
                          _ configure: (inout AnalyzerOptions) -> Void) throws -> VideoAnalyzer<CPUBackend> {
        let backend = testBackend
        let sam = try Sam(contentsOf: Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path, backend: backend)
        var clip = try CLIP.load(Fixtures.root.appendingPathComponent("clip_hf").path, backend: backend)
        if let logitScale { clip = CLIP(config: clip.config, vision: clip.vision, text: clip.text, logitScale: logitScale, weightsPath: clip.weightsPath) }
        let names = prototypes.map { $0.indices.map { "object \($0)" } } ?? ["square", "floor", "wall"]
        var random = SplitMix(seed: 7)
        let values = prototypes?.flatMap { $0 }
            ?? names.flatMap { _ in normalized((0..<clip.config.embedDim).map { _ in Float(random.next() % 1000) / 1000 - 0.5 }[...]) }
        let labels = LabelEmbeddings(labels: try names.map { try VocabularyLabel(parsing: $0, origin: "test") }, dimension: clip.config.embedDim,
                                     values: values)
        var labelerOptions = LabelerOptions()
        labelerOptions.generator.pointsPerSide = pointsPerSide
        labelerOptions.generator.pointsPerBatch = pointsPerBatch
        labelerOptions.generator.boxNmsThresh = boxNms
        labelerOptions.generator.predIouThresh = 0
        labelerOptions.generator.stabilityScoreThresh = 0
        labelerOptions.clipSize = 64
        let labeler = try ImageLabeler(sam: sam, clip: clip, backend: backend, labels: labels, options: labelerOptions)
        var options = AnalyzerOptions()
        options.trackedMinimumIoU = 0
        options.keyframeBelowIoU = 0
        options.keyframeBelowCoverage = 0
        options.discoveryGrid = 2
        configure(&options)
        return try VideoAnalyzer(labeler: labeler, options: options)
    }

    @Test func keyframesComeFirstAtTheIntervalAndAtASceneCut() throws {
        var analyzer = try analyzer { $0.keyframeEvery = 3 }
        let frames = [picture(gray: 60, squareAt: 10), picture(gray: 60, squareAt: 12), picture(gray: 60, squareAt: 14),
                      picture(gray: 60, squareAt: 16), picture(gray: 160, squareAt: 16), picture(gray: 160, squareAt: 18)]
        var reasons: [KeyframeReason?] = []
        for (n, frame) in frames.enumerated() {
            let seen = Set(analyzer.tracker.tracks.filter { $0.unseen == 0 }.map(\.id))
            let analysis = try analyzer.analyze(frame, pts: Double(n))
            reasons.append(analysis.keyframe)
            // CLIP's dense features run when some segment is embedded on this frame.
            #expect(analysis.timings.samEncoder > 0)
            #expect((analysis.timings.clipDense > 0) == analysis.segments.contains { $0.scoredPts == Double(n) })
            #expect((0...1).contains(analysis.coverage))
            for segment in analysis.segments {
                #expect(segment.mask.rle.height == Self.height && segment.mask.rle.width == Self.width && segment.mask.area > 0)
                #expect(segment.track != nil)
            }
            // Between keyframes the tracks seen on the frame before are prompted, and with
            // thresholds of 0 they go on (two prompts that find one object leave one track).
            if analysis.keyframe == nil {
                #expect(!seen.isEmpty && !seen.isDisjoint(with: analysis.segments.compactMap(\.track)))
            }
        }
        #expect(reasons == [.first, nil, nil, .interval, .sceneCut, nil])
    }

    /// A keyframe spread over 3 frames of a still picture: each frame decodes a slice beside the
    /// tracks' prompts, the keyframe ends with the last slice and gives the whole generator's
    /// masks, and the interval counts from there; a scene cut starts the slices again.
    @Test func aSlicedKeyframeOfAStillPictureIsTheWholeKeyframe() throws {
        var analyzer = try analyzer(pointsPerSide: 4, pointsPerBatch: 5) {
            $0.keyframeEvery = 3
            $0.keyframeSlices = 3
        }
        let still = picture(gray: 60, squareAt: 20), other = picture(gray: 200, squareAt: 5)
        let generator = try SamAutomaticMaskGenerator(predictor: SamPredictor(model: analyzer.labeler.sam),
                                                      options: analyzer.labeler.options.generator)
        let wholes = [try generator.generate(still), try generator.generate(other)]
        #expect(!wholes[0].isEmpty && !wholes[1].isEmpty)
        var reasons: [KeyframeReason?] = [], slices: [Int?] = [], completed: [Int] = []
        for (n, frame) in ([still, still, still, still, still, still, still, other, other, other] as [RGBImage]).enumerated() {
            let analysis = try analyzer.analyze(frame, pts: Double(n))
            reasons.append(analysis.keyframe)
            slices.append(analysis.keyframeSlice.map { $0.index })
            #expect(analysis.keyframeSlice.map { $0.count == 3 } ?? true)
            #expect(!analysis.segments.isEmpty && analysis.segments.allSatisfy { $0.track != nil })
            if let masks = analysis.slicedKeyframeMasks {
                completed.append(n)
                let whole = wholes[n < 7 ? 0 : 1]
                #expect(analysis.keyframeSlice?.index == 3)
                #expect(masks.count == whole.count)
                for (a, b) in zip(masks, whole) {
                    #expect(a.rle == b.rle && a.box == b.box && a.predictedIou == b.predictedIou && a.stabilityScore == b.stabilityScore)
                }
            } else {
                #expect(analysis.keyframeSlice?.index != 3)
            }
        }
        #expect(reasons == [.first, nil, nil, nil, nil, .interval, nil, .sceneCut, nil, nil])
        #expect(slices == [1, 2, 3, nil, nil, 1, 2, 1, 2, 3] && completed == [2, 9])
    }

    /// Keyframes that prompt the tracks first: the grid points their masks cover are not
    /// decoded, and the tracks go on through the keyframe.
    @Test func keyframesPromptedByTracksDecodeOnlyUncoveredPoints() throws {
        var analyzer = try analyzer(pointsPerSide: 4) {
            $0.keyframeEvery = 1
            $0.keyframeTrackPrompts = true
        }
        let still = picture(gray: 60, squareAt: 20)
        let first = try analyzer.analyze(still, pts: 0)
        #expect(first.keyframe == .first && first.prompts == 16)
        let tracks = Set(first.segments.compactMap(\.track))
        let second = try analyzer.analyze(still, pts: 1)
        #expect(second.keyframe == .interval)
        // Every live track is prompted once; of the grid, the points outside the prompted masks.
        #expect(second.prompts >= tracks.count && second.prompts < tracks.count + 16)
        #expect(!tracks.isDisjoint(with: second.segments.compactMap(\.track)))
    }

    @Test func slicedKeyframesNeedAGridWithoutCrops() throws {
        let sam = try Sam(contentsOf: Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path, backend: testBackend)
        let clip = try CLIP.load(Fixtures.root.appendingPathComponent("clip_hf").path, backend: testBackend)
        let labels = LabelEmbeddings(labels: [try VocabularyLabel(parsing: "thing", origin: "test")], dimension: clip.config.embedDim,
                                     values: normalized([Float](repeating: 1, count: clip.config.embedDim)[...]))
        var labelerOptions = LabelerOptions()
        labelerOptions.generator.cropNLayers = 1
        let labeler = try ImageLabeler(sam: sam, clip: clip, backend: testBackend, labels: labels, options: labelerOptions)
        var options = AnalyzerOptions()
        options.keyframeSlices = 2
        #expect(throws: PipelineError.self) { try VideoAnalyzer(labeler: labeler, options: options) }
        options.keyframeSlices = 0
        labelerOptions.generator.cropNLayers = 0
        #expect(throws: PipelineError.self) {
            try VideoAnalyzer(labeler: try ImageLabeler(sam: sam, clip: clip, backend: testBackend, labels: labels, options: labelerOptions),
                              options: options)
        }
    }

    /// What a replay of bikes.mp4 (every `step`-th frame) did in two analyzers on the same
    /// encoded frames, one embedding every frame and one selective.
    private struct Replay {
        var frames = 0
        /// Segments of the first run with a match in the second (its best, at mask IoU >= 0.9:
        /// track ids differ between runs), and those whose reported labels agree.
        var pairs = 0, agreeing = 0
        /// Segments of the selective run that kept an earlier embedding, and the frames on which
        /// it embedded any (computing CLIP's dense features).
        var kept = 0, embeddingFrames = 0
    }

    /// The replay, with one label per embedding of `labels` of the first frame's segments, at
    /// the temperature every published CLIP was trained to (100). Random weights give random
    /// text embeddings no segment is near, so labels are taken from the segments themselves,
    /// as words for what is in the video would be.
    private func replay(labels count: Int, step: Int) throws -> Replay {
        let decoder = try VideoDecoder(InputSpec(Fixtures.media("bikes.mp4")), options: DecodeOptions(layout: .rgb24))
        let first = try #require(try decoder.next())
        // Random masks overlap too much for the generator's NMS to keep more than one or two.
        var probe = try analyzer(pointsPerSide: 4, boxNms: 1) { $0.embedEveryFrame = true }
        let encodedFirst = try probe.encode(RGBImage(height: first.height, width: first.width, pixels: first.packedBytes()))
        let found = try probe.analyze(encodedFirst, pts: 0).segments.map(\.mask.rle)
        let embeddings = try probe.labeler.embedder.embed(try #require(encodedFirst.dense), masks: found).compactMap { $0 }
        try #require(embeddings.count >= count)
        let prototypes = (0..<count).map { embeddings[$0 * embeddings.count / count] }
        let trained: Float = 4.605_170_2  // log 100
        var every = try analyzer(pointsPerSide: 4, boxNms: 1, prototypes: prototypes, logitScale: trained) {
            $0.embedEveryFrame = true
            $0.discoveryGrid = 4
        }
        var selective = try analyzer(pointsPerSide: 4, boxNms: 1, prototypes: prototypes, logitScale: trained) { $0.discoveryGrid = 4 }
        var result = Replay()
        var n = 0
        var embeddedFrames: [Int: Int] = [:]  // the selective run's, by track
        while let frame = n == 0 ? first : try decoder.next() {
            defer { n += 1 }
            guard n % step == 0 else { continue }
            let pts = Double(n) / 25
            let encoded = try every.encode(RGBImage(height: frame.height, width: frame.width, pixels: frame.packedBytes()))
            let (a, b) = (try every.analyze(encoded, pts: pts), try selective.analyze(encoded, pts: pts))
            result.frames += 1
            #expect(a.segments.allSatisfy { $0.scoredPts == pts })
            for segment in b.segments where segment.scoredPts != pts {
                // Kept only by a track embedded on its first `settleAfter` frames.
                #expect(segment.scoredPts < pts && b.keyframe == nil && embeddedFrames[segment.track ?? -1, default: 0] >= 3)
                result.kept += 1
            }
            for segment in b.segments where segment.scoredPts == pts { embeddedFrames[segment.track ?? -1, default: 0] += 1 }
            if b.segments.contains(where: { $0.scoredPts == pts }) { result.embeddingFrames += 1 }
            let masks = (a.segments.map { rleToMask($0.mask.rle) }, b.segments.map { rleToMask($0.mask.rle) })
            let boxes = (masks.0.map(MaskBox.init), masks.1.map(MaskBox.init))
            for (i, x) in masks.0.enumerated() {
                guard let xBox = boxes.0[i] else { continue }
                let best = masks.1.indices.compactMap { j in boxes.1[j].map { (j, maskIoU(x, xBox, shiftedBy: (0, 0), masks.1[j], $0)) } }
                    .max { $0.1 < $1.1 }
                guard let (j, iou) = best, iou >= 0.9 else { continue }
                result.pairs += 1
                if a.segments[i].trackLabel == b.segments[j].trackLabel { result.agreeing += 1 }
            }
        }
        print("selective embedding, \(count) labels, every \(step)th frame: labels agree on \(result.agreeing) of \(result.pairs) pairs; "
              + "\(result.kept) segments kept their embedding; \(result.embeddingFrames) of \(result.frames) frames embedded")
        return result
    }

    // Selective re-embedding against embedding every frame, on a replay of a whole video (every
    // tenth frame of bikes.mp4): the segments report the same labels on at least 98 % of pairs.
    // (The fixture's random CLIP gives every segment nearly the same embedding, so six labels
    // share the probability about evenly: the votes settle on labels that lead by little, which
    // frames like the last keep all the same.)
    @Test func selectiveEmbeddingLabelsAsEveryFrameDoes() throws {
        let replay = try replay(labels: 6, step: 10)
        #expect(replay.frames == 25 && replay.pairs > 100)
        #expect(replay.kept > 0 && replay.embeddingFrames < replay.frames,
                "\(replay.kept) segments kept their embedding; \(replay.embeddingFrames) of \(replay.frames) frames embedded")
        #expect(Double(replay.agreeing) >= 0.98 * Double(replay.pairs), "labels agree on \(replay.agreeing) of \(replay.pairs) pairs")
    }

    // A track is embedded on its first `settleAfter` frames; with one label every vote is
    // settled after them, and tracked segments whose masks stay close keep their embedding
    // (reporting the pts they were scored at), and the labels agree throughout.
    @Test func settledTracksKeepTheirEmbedding() throws {
        let replay = try replay(labels: 1, step: 10)
        #expect(replay.kept > 0 && replay.embeddingFrames < replay.frames,
                "\(replay.kept) segments kept their embedding; \(replay.embeddingFrames) of \(replay.frames) frames embedded")
        #expect(replay.agreeing == replay.pairs && replay.pairs > 100)
    }

    @Test func everyFrameIsAKeyframeAtAnIntervalOfOne() throws {
        var analyzer = try analyzer { $0.keyframeEvery = 1 }
        for n in 0..<3 {
            #expect(try analyzer.analyze(picture(gray: 60, squareAt: 10 + n), pts: Double(n)).keyframe != nil)
        }
        let ends = analyzer.finish(pts: 2)
        #expect(ends.allSatisfy { $0.kind == .end } && analyzer.tracker.tracks.isEmpty)
    }

    @Test func badOptionsAreRejected() {
        for configure in [{ (o: inout AnalyzerOptions) in o.keyframeEvery = 0 }, { $0.discoveryGrid = -1 }, { $0.sceneCut = 2 },
                          { $0.trackedMinimumIoU = .nan }] {
            var options = AnalyzerOptions()
            configure(&options)
            #expect(throws: PipelineError.self) { try options.validate() }
        }
    }

    /// A ring moving right: its prompt's box is moved on by the motion, and its point is on the
    /// ring, not in the hole where the centroid is.
    @Test func aTrackPromptLeadsTheMotionAndPointsIntoTheMask() throws {
        func ring(_ cx: Int) -> BinaryMask {
            var mask = BinaryMask(height: 60, width: 120)
            for y in 0..<60 {
                for x in 0..<120 {
                    let d = (x - cx) * (x - cx) + (y - 30) * (y - 30)
                    if d <= 15 * 15 && d >= 9 * 9 { mask.pixels[y * 120 + x] = 1 }
                }
            }
            return mask
        }
        var tracker = Tracker()
        let classification = Classification(label: 0, score: 1, cosine: 1, top: [], probabilities: [1])
        for (t, cx) in [20, 24, 28, 32].enumerated() {
            _ = tracker.update([TrackerObservation(mask: ring(cx), embedding: [], classification: classification)], pts: Double(t))
        }
        let track = try #require(tracker.tracks.first)
        let prompt = TrackPrompt(track, lowResLogits: nil)
        let shift = (track.velocity.x).rounded()
        #expect(shift >= 2 && shift <= 4)
        #expect(prompt.box.x0 == Double(track.box.x0) + shift && prompt.box.x1 == Double(track.box.x1 + 1) + shift)
        #expect(prompt.box.y0 == Double(track.box.y0) && prompt.box.y1 == Double(track.box.y1 + 1))
        let moved = ring(32 + Int(shift))
        #expect(moved.pixels[Int(prompt.point.y) * 120 + Int(prompt.point.x)] == 1)
    }

    @Test func lumaHistogramsSeeACutNotMotion() {
        let a = picture(gray: 60, squareAt: 10), moved = picture(gray: 60, squareAt: 30), cut = picture(gray: 200, squareAt: 10)
        let h = lumaHistogram(a)
        #expect(abs(h.reduce(0, +) - 1) < 1e-5)
        #expect(histogramDistance(h, lumaHistogram(a)) == 0)
        #expect(histogramDistance(h, lumaHistogram(moved)) < 0.05)
        #expect(histogramDistance(h, lumaHistogram(cut)) > 0.9)
    }
}
