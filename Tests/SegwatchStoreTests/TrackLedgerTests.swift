import Foundation
import Testing
@testable import SegwatchStore

@Suite struct TrackLedgerTests {
    // Four frames of one track: its embedding is the normalized mean of the embeddings computed
    // on their own frame (a carried-over one does not count), its best observation the
    // highest-scoring, boxes at the 1st, 2nd and 4th sighting and its last, the label change
    // kept, the start and end its first and last sighting; ended tracks leave the ledger.
    @Test func accumulatesATrack() {
        var ledger = TrackLedger(run: 1, camera: "cam1")
        func segment(_ embedding: [Float]?, scored: [Float], score: Double, label: String = "car", box: [Int]) -> ObservedSegment {
            ObservedSegment(track: 5, label: label, score: score, embedding: embedding, scoredEmbedding: scored, box: box)
        }
        let a: [Float] = [2, 0, 0], b: [Float] = [0, 3, 0], c: [Float] = [0, 0, 1]
        var (batch, newBest) = ledger.frame(time: 1000, pts: 1, segments: [segment(a, scored: a, score: 0.4, box: [0, 0, 1, 1])],
                                             events: [ObservedTrackEvent(kind: .start, track: 5, label: "car", previous: nil, pts: 1, bestScore: 0.4)],
                                             stuff: [])
        #expect(newBest == [5])
        #expect(batch.tracks.map(\.embedding) == [[1, 0, 0]] && batch.boxes.count == 1)
        (batch, newBest) = ledger.frame(time: 2000, pts: 2, segments: [segment(b, scored: b, score: 0.9, box: [0, 0, 2, 2])], events: [], stuff: [])
        #expect(newBest == [5])
        let half = Float(0.5).squareRoot()
        #expect(batch.tracks[0].embedding.enumerated().allSatisfy { abs($0.element - [half, half, 0][$0.offset]) < 1e-6 })
        #expect(batch.tracks[0].bestEmbedding == [0, 1, 0] && batch.tracks[0].bestScore == 0.9 && batch.tracks[0].bestPts == 2)
        (batch, newBest) = ledger.frame(time: 3000, pts: 3, segments: [segment(nil, scored: b, score: 0.8, label: "person", box: [0, 0, 3, 3])],
                             events: [ObservedTrackEvent(kind: .label, track: 5, label: "person", previous: "car", pts: 3, bestScore: 0.9)],
                             stuff: [("sky", 0.5)])
        #expect(newBest.isEmpty && batch.tracks[0].observations == 2 && batch.boxes.isEmpty && batch.labelChanges == [LabelChange(track: 5, label: "person", previous: "car")])
        (batch, _) = ledger.frame(time: 4000, pts: 4, segments: [segment(c, scored: c, score: 0.5, label: "person", box: [0, 0, 4, 4])], events: [], stuff: [])
        #expect(batch.boxes.map(\.box) == [[0, 0, 4, 4]])
        (batch, _) = ledger.frame(time: 5000, pts: 5, segments: [segment(c, scored: c, score: 0.5, label: "person", box: [0, 0, 5, 5])], events: [], stuff: [])
        #expect(batch.boxes.isEmpty)
        (batch, _) = ledger.frame(time: 6000, pts: 6, segments: [],
                             events: [ObservedTrackEvent(kind: .end, track: 5, label: "person", previous: nil, pts: 6, bestScore: 0.9)], stuff: [])
        let row = batch.tracks[0]
        #expect(row.ended && row.start == 1000 && row.end == 5000 && row.startPts == 1 && row.endPts == 5 && row.label == "person")
        #expect(row.observations == 4 && batch.boxes.map(\.box) == [[0, 0, 5, 5]])
        let mean = normalizedForTest([1, 1, 2])
        #expect(row.embedding.enumerated().allSatisfy { abs($0.element - mean[$0.offset]) < 1e-6 }, "\(row.embedding)")
        #expect(ledger.liveTracks == 0)
    }

    private func normalizedForTest(_ v: [Float]) -> [Float] {
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return v.map { $0 / n }
    }
}
