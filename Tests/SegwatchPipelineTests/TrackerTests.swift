import SegwatchPipeline
import SegwatchSAM
import Testing

/// The tracker on synthetic frames: rectangles that move, cross, hide and come back.
struct TrackerTests {
    private static let (width, height) = (200, 80)

    /// A w x h rectangle at (x, y), clipped to the frame, without the pixels of `hiddenBy`.
    private func rectangle(_ x: Int, _ y: Int, _ w: Int, _ h: Int, hiddenBy front: BinaryMask? = nil) -> BinaryMask {
        var mask = BinaryMask(height: Self.height, width: Self.width)
        for row in max(y, 0)..<min(y + h, Self.height) {
            for column in max(x, 0)..<min(x + w, Self.width) where front?.pixels[row * Self.width + column] ?? 0 == 0 {
                mask.pixels[row * Self.width + column] = 1
            }
        }
        return mask
    }

    private func unit(_ axis: Int) -> [Float] { (0..<4).map { $0 == axis ? 1 : 0 } }

    private func classification(_ probabilities: [Float], unknown: Bool = false) -> Classification {
        let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
        return Classification(label: unknown ? nil : best, score: probabilities[best], cosine: 0.3,
                              top: [LabelScore(label: best, probability: probabilities[best])], probabilities: probabilities)
    }

    private func observation(_ mask: BinaryMask, _ embedding: [Float] = [], _ probabilities: [Float] = [0.7, 0.3]) -> TrackerObservation {
        TrackerObservation(mask: mask, embedding: embedding, classification: classification(probabilities))
    }

    @Test func movingObjectsKeepTheirIDs() {
        var tracker = Tracker()
        var seen: [[Int?]] = []
        var events: [TrackEvent] = []
        for t in 0..<20 {
            var frame = [observation(rectangle(10 + 5 * t, 10, 20, 15)), observation(rectangle(150 - 3 * t, 45, 30, 25))]
            // The order of a frame's segments carries nothing.
            if t % 2 == 1 { frame.reverse() }
            let update = tracker.update(frame, pts: Double(t) * 0.2)
            seen.append(t % 2 == 1 ? update.tracks.reversed() : update.tracks)
            events += update.events
        }
        #expect(Set(seen.map { $0[0] }).count == 1 && Set(seen.map { $0[1] }).count == 1 && seen[0][0] != seen[0][1])
        #expect(events.map(\.kind) == [.start, .start])
        let ends = tracker.finish(pts: 4)
        #expect(ends.map(\.kind) == [.end, .end] && ends.allSatisfy { abs($0.lifetime - 19 * 0.2) < 1e-9 })
        #expect(tracker.tracks.isEmpty)
    }

    /// A runs right in front of B, which runs left: at the crossing B is only partly visible.
    private func crossing(embeddings: Bool) -> (a: [Int?], b: [Int?]) {
        var tracker = Tracker()
        var a: [Int?] = [], b: [Int?] = []
        for t in 0...26 {
            let front = rectangle(10 + 6 * t, 30, 20, 20)
            let back = rectangle(170 - 6 * t, 30, 20, 20, hiddenBy: front)
            let update = tracker.update([observation(back, embeddings ? unit(1) : []), observation(front, embeddings ? unit(0) : [])],
                                        pts: Double(t))
            b.append(update.tracks[0])
            a.append(update.tracks[1])
        }
        return (a, b)
    }

    @Test(arguments: [true, false]) func crossingObjectsDoNotSwap(embeddings: Bool) {
        let (a, b) = crossing(embeddings: embeddings)
        #expect(Set(a).count == 1 && a[0] != nil, "A's ids: \(a)")
        #expect(Set(b).count == 1 && b[0] != nil && b[0] != a[0], "B's ids: \(b), A's: \(a)")
    }

    /// One object over 14 frames with maxAge 5, at `x(t)`, missing during `hidden`.
    private func hidden(_ hidden: ClosedRange<Int>, x: (Int) -> Int) -> (ids: [Int?], events: [TrackEvent]) {
        var options = TrackerOptions()
        options.maxAge = 5
        var tracker = Tracker(options: options)
        var ids: [Int?] = []
        var events: [TrackEvent] = []
        for t in 0..<14 {
            let update = tracker.update(hidden.contains(t) ? [] : [observation(rectangle(x(t), 20, 25, 25), unit(2))], pts: Double(t))
            ids += update.tracks
            events += update.events
        }
        return (ids, events)
    }

    @Test func anOccludedObjectComesBackWithItsID() {
        // Hidden for frames 5...9: five unseen frames, as many as maxAge allows.
        let (ids, events) = hidden(5...9) { 20 + 4 * $0 }
        #expect(ids.count == 9 && Set(ids).count == 1, "\(ids)")
        #expect(events.map(\.kind) == [.start])
    }

    @Test func anObjectGoneLongerThanMaxAgeIsANewTrack() {
        let (ids, events) = hidden(4...9) { _ in 60 }  // six unseen frames
        #expect(Set(ids.prefix(4)).count == 1 && Set(ids.suffix(4)).count == 1 && ids[0] != ids.last!, "\(ids)")
        #expect(events.map(\.kind) == [.start, .end, .start])
        #expect(events[1].pts == 9 && events[1].lifetime == 3)
    }

    @Test func aReappearingObjectElsewhereIsKnownByItsEmbedding() {
        var tracker = Tracker()
        let before = tracker.update([observation(rectangle(10, 10, 20, 20), unit(3)), observation(rectangle(120, 40, 20, 20), unit(0))], pts: 0)
        _ = tracker.update([observation(rectangle(120, 40, 20, 20), unit(0))], pts: 1)
        // The first object is back far from where it was, with no overlap to go by.
        let after = tracker.update([observation(rectangle(160, 5, 20, 20), unit(3)), observation(rectangle(120, 40, 20, 20), unit(0))], pts: 2)
        #expect(after.tracks == before.tracks)
        // Without a matching embedding it would be a new object.
        let stranger = tracker.update([observation(rectangle(60, 50, 20, 20), unit(1))], pts: 3)
        #expect(stranger.tracks[0].map { !before.tracks.contains($0) } == true)
    }

    @Test func aLabelDoesNotFlipOnOneNoisyFrame() {
        var tracker = Tracker()
        var events: [TrackEvent] = []
        for t in 0..<10 {
            let probabilities: [Float] = t == 5 ? [0.1, 0.9] : [0.8, 0.2]
            events += tracker.update([observation(rectangle(50, 20, 30, 30), [], probabilities)], pts: Double(t)).events
        }
        #expect(events.map(\.kind) == [.start] && events[0].label == 0)
        #expect(tracker.tracks[0].label == 0)
        // A lasting change does come through, once.
        for t in 10..<20 {
            events += tracker.update([observation(rectangle(50, 20, 30, 30), [], [0.2, 0.8])], pts: Double(t)).events
        }
        let changes = events.filter { $0.kind == .label }
        #expect(changes.count == 1 && changes[0].label == 1 && changes[0].previousLabel == 0)
        #expect(abs(changes[0].bestScore - 0.8) < 1e-6 && tracker.tracks[0].label == 1)
    }

    // `keepsLabel` says whether frames classified alike keep the voted label: fed again and
    // again to the tracker, such a frame changes the label exactly when it says no. Random
    // histories (unknown frames among them) and random frames; a frame within 0.02 of the
    // hysteresis is drawn again (the limit decides it only after very many frames).
    @Test func aLabelIsKeptExactlyWhenFramesLikeTheLastWouldKeepIt() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func uniform() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24)
        }
        func randomClassification() -> Classification {
            let weights = (0..<3).map { _ in uniform() + 0.01 }
            let sum = weights.reduce(0, +)
            return classification(weights.map { $0 / sum }, unknown: uniform() < 0.2)
        }
        var outcomes = (kept: 0, changed: 0)
        for _ in 0..<200 {
            var tracker = Tracker()
            for t in 0..<Int(uniform() * 6) + 1 {
                _ = tracker.update([TrackerObservation(mask: rectangle(50, 20, 30, 30), embedding: [],
                                                       classification: randomClassification())], pts: Double(t))
            }
            var frame = randomClassification()
            let hysteresis = tracker.options.hysteresis
            while let label = tracker.tracks[0].label, frame.label != nil,
                  abs(frame.probabilities.max()! - hysteresis * frame.probabilities[label]) < 0.02 {
                frame = randomClassification()
            }
            let keeps = tracker.tracks[0].keepsLabel(frame, hysteresis: hysteresis)
            let before = tracker.tracks[0].label
            var changed = false
            for t in 10..<110 {
                changed = changed || !tracker.update([TrackerObservation(mask: rectangle(50, 20, 30, 30), embedding: [],
                                                                         classification: frame)], pts: Double(t)).events.isEmpty
            }
            #expect(keeps == !changed, "label \(String(describing: before)), frame \(frame.probabilities), unknown: \(frame.label == nil)")
            #expect(changed == (tracker.tracks[0].label != before))
            if keeps { outcomes.kept += 1 } else { outcomes.changed += 1 }
        }
        #expect(outcomes.kept > 30 && outcomes.changed > 30, "\(outcomes)")
    }

    @Test func unknownSegmentsVoteForUnknown() {
        var tracker = Tracker()
        let unknown = TrackerObservation(mask: rectangle(50, 20, 30, 30), embedding: [],
                                         classification: classification([0.55, 0.45], unknown: true))
        let start = tracker.update([unknown], pts: 0)
        #expect(start.events.count == 1 && start.events[0].label == nil && start.events[0].bestScore == 0)
        #expect(tracker.update([unknown], pts: 1).events.isEmpty)
        // An empty mask is no segment.
        #expect(tracker.update([observation(BinaryMask(height: Self.height, width: Self.width))], pts: 2).tracks == [nil])
    }

    @Test func maskIoUOfShiftedRectangles() {
        let a = rectangle(10, 10, 10, 10), b = rectangle(15, 10, 10, 10)
        let (boxA, boxB) = (MaskBox(a)!, MaskBox(b)!)
        // 50 shared pixels of 150.
        #expect(abs(maskIoU(a, boxA, shiftedBy: (0, 0), b, boxB) - 50.0 / 150) < 1e-12)
        #expect(maskIoU(a, boxA, shiftedBy: (5, 0), b, boxB) == 1)
        #expect(maskIoU(a, boxA, shiftedBy: (20, 0), b, boxB) == 0)
        // Moved half out of the frame, a keeps its 5 columns inside, exactly `edge`.
        let edge = rectangle(195, 10, 5, 10)
        #expect(maskIoU(a, boxA, shiftedBy: (185, 0), edge, MaskBox(edge)!) == 1)
        #expect(maskIoU(a, boxA, shiftedBy: (180, 0), edge, MaskBox(edge)!) == 0.5)
        #expect(boxA.area == 100 && boxA.centroid == (14.5, 14.5) && MaskBox(BinaryMask(height: 4, width: 4)) == nil)
    }

    /// Irregular masks (random blobs, any byte value set) moved every way, some off the frame:
    /// the IoU counted pixel by pixel over the whole frame.
    @Test func maskIoUCountsEveryPixel() {
        var generator = SystemRandomNumberGenerator()
        func blob() -> BinaryMask {
            var mask = BinaryMask(height: 37, width: 53)
            let (x0, y0) = (Int.random(in: 0..<53, using: &generator), Int.random(in: 0..<37, using: &generator))
            let (x1, y1) = (Int.random(in: x0..<53, using: &generator), Int.random(in: y0..<37, using: &generator))
            for y in y0...y1 { for x in x0...x1 where Int.random(in: 0..<3, using: &generator) > 0 { mask.pixels[y * 53 + x] = UInt8.random(in: 1...255, using: &generator) } }
            return mask
        }
        for _ in 0..<300 {
            let (a, b) = (blob(), blob())
            guard let boxA = MaskBox(a), let boxB = MaskBox(b) else { continue }
            let shift = (x: Int.random(in: -60...60, using: &generator), y: Int.random(in: -40...40, using: &generator))
            var (shifted, intersection) = (0, 0)
            for y in 0..<37 {
                for x in 0..<53 {
                    let (sx, sy) = (x - shift.x, y - shift.y)
                    guard (0..<53).contains(sx), (0..<37).contains(sy), a.pixels[sy * 53 + sx] != 0 else { continue }
                    shifted += 1
                    if b.pixels[y * 53 + x] != 0 { intersection += 1 }
                }
            }
            let union = shifted + boxB.area - intersection
            #expect(maskIoU(a, boxA, shiftedBy: shift, b, boxB) == (union > 0 ? Double(intersection) / Double(union) : 0))
        }
    }
}
