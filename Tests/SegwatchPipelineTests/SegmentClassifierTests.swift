import Foundation
import SegwatchCLIP
import SegwatchPipeline
import SegwatchTensor
import Testing

struct SegmentClassifierTests {
    private func classifier(_ options: ClassifierOptions = ClassifierOptions()) throws -> SegmentClassifier {
        let labels = try References.tensor("classify.labels")
        let names = try (0..<labels.shape[0]).map { try VocabularyLabel(parsing: "label \($0)", origin: "test") }
        // log(100): the scale numpy used.
        return SegmentClassifier(labels: LabelEmbeddings(labels: names, dimension: labels.shape[1], values: labels.toArray()),
                                 logitScale: Float(log(100.0)), options: options)
    }

    @Test func probabilitiesAreTheSoftmaxOfScaledCosines() throws {
        let results = try classifier().classify(References.rows("classify.segments"))
        let cosines = try References.rows("classify.cosines"), probabilities = try References.rows("classify.probabilities")
        for (n, result) in results.enumerated() {
            expectClose(result.probabilities, probabilities[n], atol: 1e-4, "segment \(n)")
            let best = cosines[n].indices.max { cosines[n][$0] < cosines[n][$1] }!
            #expect(result.label == best && abs(result.cosine - cosines[n][best]) < 1e-5)
            #expect(result.top.count == 5 && result.top.map(\.probability) == result.top.map(\.probability).sorted(by: >))
        }
    }

    // Labels 3 and 4 are the same vector and segment 3 lies on it: the first listed wins, and
    // the top list keeps vocabulary order between them.
    @Test func tiesGoToTheLabelListedFirst() throws {
        let result = try classifier().classify(References.rows("classify.segments"))[3]
        #expect(result.label == 3 && result.top[0].label == 3 && result.top[1].label == 4)
        #expect(result.top[0].probability == result.top[1].probability && abs(result.score - 0.5) < 1e-3)
    }

    @Test func thresholdsMakeUnknown() throws {
        var options = ClassifierOptions()
        options.topK = 2
        options.minimumProbability = 0.6
        let segments = try References.rows("classify.segments")
        let probabilities = try References.rows("classify.probabilities")
        for (n, result) in try classifier(options).classify(segments).enumerated() {
            let best = probabilities[n].max()!
            #expect((result.label == nil) == (best < 0.6), "segment \(n): best \(best)")
            #expect(result.top.count == 2 && abs(result.score - best) < 1e-4)
        }
        options.minimumProbability = 0
        options.minimumCosine = 1.01
        #expect(try classifier(options).classify(segments).allSatisfy { $0.label == nil })
    }

    // A softmax over one label is always 1: with the background prompts beside it, a segment
    // nearer a background prompt is unknown, one nearer the label keeps it with its share.
    @Test func theBackgroundGivesOneLabelSomethingToLoseTo() throws {
        let person = try VocabularyLabel(parsing: "person", origin: "test")
        let others = try ["thing", "stuff"].map { try VocabularyLabel(parsing: $0, origin: "test") }
        let labels = LabelEmbeddings(labels: [person], dimension: 3, values: [1, 0, 0])
        let background = LabelEmbeddings(labels: others, dimension: 3, values: [0, 1, 0, 0, 0, 1])
        let alone = SegmentClassifier(labels: labels, logitScale: Float(log(100.0)))
        let withBackground = SegmentClassifier(labels: labels, background: background, logitScale: Float(log(100.0)))
        let segments: [[Float]] = [[0.6, 0.1, 0.58], [0.1, 0.99, 0.1], [0.2, 0.1, 0.97]]
        #expect(try alone.classify(segments).allSatisfy { $0.label == 0 && $0.score == 1 })
        let results = try withBackground.classify(segments)
        #expect(results[0].label == 0 && results[0].score > 0.5 && results[0].score < 0.95)
        #expect(results[1].label == nil && results[2].label == nil)
        // What is reported is still about the labels: person's share and cosine, never a background name.
        #expect(results.allSatisfy { $0.probabilities.count == 1 && $0.top.map(\.label) == [0] })
        #expect(abs(results[1].cosine - 0.1) < 1e-6)
        #expect(results[1].score < 0.01)
    }

    @Test func backgroundWordsTheVocabularyNamesAreLeftOut() throws {
        let labels = try ["car", "Stuff|things"].map { try VocabularyLabel(parsing: $0, origin: "test") }
        #expect(BackgroundPrompts.names(excluding: labels) == ["background", "object", "thing", "texture", "something"])
    }

    @Test func embeddingsOfAnotherWidthAreRefused() throws {
        #expect(throws: PipelineError.self) { try classifier().classify([[1, 0, 0]]) }
        #expect(try classifier().classify([]).isEmpty)
    }
}

struct SemanticMapTests {
    @Test func eachPixelTakesTheMostProbableLabelOfItsSegments() throws {
        let masks = try References.masks("map.masks")
        var votes: [[Float]?] = try References.rows("map.probabilities")
        votes[2] = nil  // does not vote, as the reference
        let map = try semanticMap(masks: masks, probabilities: votes, labels: 3, height: 6, width: 7)
        #expect(map == (try References.tensor("map.expected")).toArray().map { Int32($0) })
        #expect(map.contains(-1))
    }

    @Test func noSegmentsLeaveEverythingUnknown() throws {
        #expect(try semanticMap(masks: [], probabilities: [], labels: 3, height: 2, width: 2) == [-1, -1, -1, -1])
        #expect(throws: PipelineError.self) { try semanticMap(masks: [], probabilities: [[1]], labels: 1, height: 2, width: 2) }
    }
}
