// Label embeddings from the text tower: every spelling of a label in every template, averaged.
import SegwatchTensor

/// A vocabulary's labels in CLIP's joint space, one unit-norm row per label.
public struct LabelEmbeddings: Sendable {
    public let labels: [VocabularyLabel]
    public let dimension: Int
    /// `[labels.count, dimension]`, row-major.
    public let values: [Float]

    public init(labels: [VocabularyLabel], dimension: Int, values: [Float]) {
        precondition(values.count == labels.count * dimension, "\(values.count) values for \(labels.count) labels of \(dimension)")
        self.labels = labels
        self.dimension = dimension
        self.values = values
    }

    public func row(_ label: Int) -> ArraySlice<Float> {
        values[(label * dimension)..<((label + 1) * dimension)]
    }
}

public struct VocabularyEncoder<B: Backend>: Sendable {
    public let text: TextTransformer<B>
    public let tokenizer: CLIPTokenizer
    public let templates: PromptTemplates
    /// Prompts per text-tower call. Prompts are sorted by length first, so each batch's context
    /// is cut close to its own longest prompt.
    public var batchSize = 64

    public init(text: TextTransformer<B>, tokenizer: CLIPTokenizer, templates: PromptTemplates) {
        self.text = text
        self.tokenizer = tokenizer
        self.templates = templates
    }

    public var dimension: Int { text.embedDim }

    /// Every prompt's token ids (start, BPE, end, zero padding): label by label, spelling by
    /// spelling, template by template. Checked whole before anything is encoded, so a label that
    /// does not fit fails in a second rather than after minutes of work.
    func prompts(_ labels: [VocabularyLabel]) throws(VocabularyError) -> (ids: [[Int32]], owner: [Int]) {
        try Self.prompts(labels, templates: templates, tokenizer: tokenizer, context: text.contextLength)
    }

    /// Throws `.tooLong` for the first prompt of `labels` that does not fit `context` tokens:
    /// what a command checks before loading models.
    public static func check(_ labels: [VocabularyLabel], templates: PromptTemplates, tokenizer: CLIPTokenizer,
                             context: Int) throws(VocabularyError) {
        _ = try prompts(labels, templates: templates, tokenizer: tokenizer, context: context)
    }

    static func prompts(_ labels: [VocabularyLabel], templates: PromptTemplates, tokenizer: CLIPTokenizer,
                        context: Int) throws(VocabularyError) -> (ids: [[Int32]], owner: [Int]) {
        var ids: [[Int32]] = [], owner: [Int] = []
        for (index, label) in labels.enumerated() {
            for spelling in label.spellings {
                for prompt in templates.prompts(spelling) {
                    let content = tokenizer.encode(prompt)
                    guard content.count + 2 <= context else {
                        throw .tooLong(origin: label.origin, label: spelling, prompt: prompt, tokens: content.count + 2, context: context)
                    }
                    var row = [tokenizer.startOfText] + content + [tokenizer.endOfText]
                    row += repeatElement(0, count: context - row.count)
                    ids.append(row)
                    owner.append(index)
                }
            }
        }
        return (ids, owner)
    }

    /// One unit-norm embedding per label: the normalized mean of its prompts' normalized
    /// embeddings. `progress(done, total)` counts prompts.
    public func encode(_ labels: [VocabularyLabel], progress: ((Int, Int) -> Void)? = nil) throws -> [[Float]] {
        let (ids, owner) = try prompts(labels)
        let width = dimension
        var sums = [[Float]](repeating: [Float](repeating: 0, count: width), count: labels.count)
        let order = ids.indices.sorted { (length(ids[$0]), $0) < (length(ids[$1]), $1) }
        var done = 0
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let batch = Array(order[start..<min(start + batchSize, order.count)])
            let embedded = text.backend.download(try text(batch.map { ids[$0] })).toArray()
            for (row, prompt) in batch.enumerated() {
                let unit = normalized(embedded[(row * width)..<((row + 1) * width)])
                for d in 0..<width { sums[owner[prompt]][d] += unit[d] }
            }
            done += batch.count
            progress?(done, order.count)
        }
        return sums.map(normalized)
    }

    /// Tokens up to and including end of text.
    private func length(_ row: [Int32]) -> Int {
        (row.firstIndex(of: tokenizer.endOfText) ?? row.count - 1) + 1
    }
}
