// Labels for segment embeddings: cosine similarity with the vocabulary, softmax at CLIP's scale.
import Foundation
import SegwatchCLIP
import SegwatchTensor

public struct ClassifierOptions: Sendable, Equatable {
    /// Labels listed per segment, best first.
    public var topK = 5
    /// A segment whose best probability is below this is unknown.
    public var minimumProbability: Float = 0
    /// A segment whose best cosine similarity is below this is unknown.
    public var minimumCosine: Float = -1

    public init() {}
}

/// One segment's labels. `label` is nil for an unknown segment; `score` and `cosine` are those of
/// the best label all the same, so a threshold can be judged from the output.
public struct Classification: Sendable, Equatable {
    public var label: Int?
    /// The best label's probability.
    public var score: Float
    /// The best label's cosine similarity.
    public var cosine: Float
    /// Up to `topK` labels and their probabilities, best first; ties keep vocabulary order.
    public var top: [LabelScore]
    /// Every label's probability, in vocabulary order (for the semantic map's vote).
    public var probabilities: [Float]

    public init(label: Int?, score: Float, cosine: Float, top: [LabelScore], probabilities: [Float]) {
        (self.label, self.score, self.cosine, self.top, self.probabilities) = (label, score, cosine, top, probabilities)
    }
}

public struct LabelScore: Sendable, Equatable {
    public var label: Int
    public var probability: Float

    public init(label: Int, probability: Float) {
        (self.label, self.probability) = (label, probability)
    }
}

public struct SegmentClassifier: Sendable {
    public let labels: LabelEmbeddings
    /// `labels.values` as the `[L, D]` weight of one product with every segment.
    private let labelMatrix: Tensor
    /// For each label whose vector repeats an earlier label's (two names embedded alike), that
    /// earlier label: the product's kernel may compute the two columns in different orders, and
    /// a tie must stay a tie, won by the label listed first.
    private let sameAs: [(label: Int, first: Int)]
    /// `exp(logit_scale)`: 100 for OpenAI's CLIP.
    public let scale: Float
    public let options: ClassifierOptions

    /// `logitScale` as the model stores it (a log).
    public init(labels: LabelEmbeddings, logitScale: Float, options: ClassifierOptions = ClassifierOptions()) {
        self.labels = labels
        labelMatrix = Tensor(shape: [labels.labels.count, labels.dimension], values: labels.values)
        var firstOf: [ArraySlice<Float>: Int] = [:], sameAs: [(Int, Int)] = []
        for label in labels.labels.indices {
            let row = labels.values[(label * labels.dimension)..<((label + 1) * labels.dimension)]
            if let first = firstOf[row] { sameAs.append((label, first)) } else { firstOf[row] = label }
        }
        self.sameAs = sameAs
        scale = Float(exp(Double(logitScale)))
        self.options = options
    }

    /// `embeddings`: unit-norm rows of the labels' dimension.
    public func classify(_ embeddings: [[Float]]) throws(PipelineError) -> [Classification] {
        let count = labels.labels.count, dimension = labels.dimension
        guard !embeddings.isEmpty else { return [] }
        if let row = embeddings.firstIndex(where: { $0.count != dimension }) {
            throw .mismatch("segment embedding \(row) has \(embeddings[row].count) values; the vocabulary's labels have \(dimension)")
        }
        // [N, D] x [L, D]^T: every cosine in one product.
        var cosines = linear(Tensor(shape: [embeddings.count, dimension], values: embeddings.flatMap { $0 }),
                             weight: labelMatrix, bias: nil).toArray()
        for n in embeddings.indices {
            for (label, first) in sameAs { cosines[n * count + label] = cosines[n * count + first] }
        }
        return embeddings.indices.map { n in
            let row = Array(cosines[(n * count)..<((n + 1) * count)])
            return classification(cosines: row)
        }
    }

    func classification(cosines: [Float]) -> Classification {
        var best = 0
        for i in cosines.indices where cosines[i] > cosines[best] { best = i }
        // Softmax in double: 1,000 labels at scale 100 lose nothing to rounding.
        let exps = cosines.map { exp(Double(scale) * Double($0 - cosines[best])) }
        let total = exps.reduce(0, +)
        let probabilities = exps.map { Float($0 / total) }
        let order = cosines.indices.sorted { (probabilities[$0], -$0) > (probabilities[$1], -$1) }
        let known = probabilities[best] >= options.minimumProbability && cosines[best] >= options.minimumCosine
        return Classification(label: known ? best : nil, score: probabilities[best], cosine: cosines[best],
                              top: order.prefix(options.topK).map { LabelScore(label: $0, probability: probabilities[$0]) },
                              probabilities: probabilities)
    }
}
