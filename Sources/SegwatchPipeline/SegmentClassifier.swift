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

/// A segment's "none of these": generic prompts that every vocabulary is compared with besides
/// its own labels. A softmax over one label is always 1, so without them `--label person` alone
/// made every segment a person; with them a segment that looks more like "a thing" or "stuff"
/// than like any label is unknown, whatever the vocabulary's size. Words a vocabulary itself
/// names are left out of its background.
public enum BackgroundPrompts {
    public static let names = ["background", "object", "thing", "stuff", "texture", "something"]

    /// The background names for a vocabulary: those it does not name itself.
    public static func names(excluding labels: [VocabularyLabel]) -> [String] {
        let named = Set(labels.flatMap(\.spellings).map { $0.lowercased() })
        return names.filter { !named.contains($0) }
    }
}

public struct SegmentClassifier: Sendable {
    public let labels: LabelEmbeddings
    /// The background prompts (`BackgroundPrompts`), if the classifier has them: rows after the
    /// labels' in the product and the softmax, never a segment's label.
    public let background: LabelEmbeddings?
    /// `labels.values`, then the background's, as the `[L + B, D]` weight of one product with every segment.
    private let labelMatrix: Tensor
    /// For each row whose vector repeats an earlier row's (two names embedded alike), that
    /// earlier row: the product's kernel may compute the two columns in different orders, and
    /// a tie must stay a tie, won by the label listed first.
    private let sameAs: [(label: Int, first: Int)]
    /// `exp(logit_scale)`: 100 for OpenAI's CLIP.
    public let scale: Float
    public let options: ClassifierOptions

    /// `logitScale` as the model stores it (a log).
    public init(labels: LabelEmbeddings, background: LabelEmbeddings? = nil, logitScale: Float,
                options: ClassifierOptions = ClassifierOptions()) {
        precondition(background.map { $0.dimension == labels.dimension } ?? true, "the background's dimension differs from the labels'")
        self.labels = labels
        self.background = background
        let rows = labels.labels.count + (background?.labels.count ?? 0)
        let values = labels.values + (background?.values ?? [])
        labelMatrix = Tensor(shape: [rows, labels.dimension], values: values)
        var firstOf: [ArraySlice<Float>: Int] = [:], sameAs: [(Int, Int)] = []
        for row in 0..<rows {
            let vector = values[(row * labels.dimension)..<((row + 1) * labels.dimension)]
            if let first = firstOf[vector] { sameAs.append((row, first)) } else { firstOf[vector] = row }
        }
        self.sameAs = sameAs
        scale = Float(exp(Double(logitScale)))
        self.options = options
    }

    /// `embeddings`: unit-norm rows of the labels' dimension.
    public func classify(_ embeddings: [[Float]]) throws(PipelineError) -> [Classification] {
        let count = labelMatrix.shape[0], dimension = labels.dimension
        guard !embeddings.isEmpty else { return [] }
        if let row = embeddings.firstIndex(where: { $0.count != dimension }) {
            throw .mismatch("segment embedding \(row) has \(embeddings[row].count) values; the vocabulary's labels have \(dimension)")
        }
        // [N, D] x [L + B, D]^T: every cosine in one product.
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

    /// One segment's cosines with every label, then every background prompt.
    func classification(cosines: [Float]) -> Classification {
        let labelCount = labels.labels.count
        var best = 0
        for i in cosines.indices where cosines[i] > cosines[best] { best = i }
        // Softmax in double: 1,000 labels at scale 100 lose nothing to rounding.
        let exps = cosines.map { exp(Double(scale) * Double($0 - cosines[best])) }
        let total = exps.reduce(0, +)
        // The labels' probabilities: with a background, they sum to what it leaves them.
        let probabilities = exps.prefix(labelCount).map { Float($0 / total) }
        var bestLabel = 0
        for i in 0..<labelCount where cosines[i] > cosines[bestLabel] { bestLabel = i }
        let order = probabilities.indices.sorted { (probabilities[$0], -$0) > (probabilities[$1], -$1) }
        let known = best < labelCount && probabilities[bestLabel] >= options.minimumProbability && cosines[bestLabel] >= options.minimumCosine
        return Classification(label: known ? bestLabel : nil, score: probabilities[bestLabel], cosine: cosines[bestLabel],
                              top: order.prefix(options.topK).map { LabelScore(label: $0, probability: probabilities[$0]) },
                              probabilities: probabilities)
    }
}
