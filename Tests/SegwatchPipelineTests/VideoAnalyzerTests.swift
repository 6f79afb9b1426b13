import SegwatchCLIP
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

    private func analyzer(_ configure: (inout AnalyzerOptions) -> Void) throws -> VideoAnalyzer<CPUBackend> {
        let backend = testBackend
        let sam = try Sam(contentsOf: Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path, backend: backend)
        let clip = try CLIP.load(Fixtures.root.appendingPathComponent("clip_hf").path, backend: backend)
        let names = ["square", "floor", "wall"]
        var random = SplitMix(seed: 7)
        let labels = LabelEmbeddings(labels: try names.map { try VocabularyLabel(parsing: $0, origin: "test") }, dimension: clip.config.embedDim,
                                     values: names.flatMap { _ in normalized((0..<clip.config.embedDim).map { _ in Float(random.next() % 1000) / 1000 - 0.5 }[...]) })
        var labelerOptions = LabelerOptions()
        labelerOptions.generator.pointsPerSide = 2
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
            #expect(analysis.timings.samEncoder > 0 && analysis.timings.clipDense > 0)
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
