// A vocabulary's embeddings: from the cache where it has them, from the text tower otherwise.
import Foundation
import SegwatchTensor

/// What `embedVocabulary` did, for the user.
public struct VocabularyReport: Sendable {
    /// Labels found in the cache, and labels encoded now.
    public var cached = 0
    public var encoded = 0
    public var cacheFile: String?
    /// Why the pack was partly or wholly unusable, when it was (its labels were encoded again).
    public var cacheDamage: String?
    /// Why the new embeddings could not be stored (they are still returned).
    public var cacheWriteError: String?
}

/// Label embeddings for `vocabulary` with `templates`, keyed in `cache` by `modelDigest`
/// (`CLIPFiles.digest(_:memo:)`). Only labels the cache lacks are encoded, and `encoder` is
/// called only then, so a warm cache never loads the text tower. A cache that cannot be written
/// is reported, not fatal.
public func embedVocabulary<B: Backend>(
    _ vocabulary: Vocabulary, templates: PromptTemplates, modelDigest: UInt64, cache: VocabularyCache?,
    encoder: () throws -> VocabularyEncoder<B>, progress: ((Int, Int) -> Void)? = nil
) throws -> (LabelEmbeddings, VocabularyReport) {
    var report = VocabularyReport()
    let templateDigest = templates.digest
    var known: [String: [Float]] = [:]
    var dimension: Int?
    if let cache {
        let contents = cache.read(model: modelDigest, templates: templateDigest)
        report.cacheFile = cache.packFile(model: modelDigest, templates: templateDigest).path
        report.cacheDamage = contents.damage
        known = contents.embeddings
        dimension = contents.dimension
    }
    func unknown() -> [VocabularyLabel] {
        var keys = Set<String>()
        return vocabulary.labels.filter { known[$0.key] == nil && keys.insert($0.key).inserted }
    }
    var missing = unknown()
    if !missing.isEmpty {
        let encoder = try encoder()
        precondition(encoder.templates == templates, "the encoder's templates differ from the ones the cache is keyed by")
        if let cached = dimension, cached != encoder.dimension {
            // Cannot happen for one model digest, short of a collision: encode everything.
            report.cacheDamage = "embeddings of \(cached) values; the model makes \(encoder.dimension)"
            known = [:]
            missing = unknown()
        }
        dimension = encoder.dimension
        let embeddings = try encoder.encode(missing, progress: progress)
        for (label, embedding) in zip(missing, embeddings) { known[label.key] = embedding }
        report.encoded = missing.count
        if let cache {
            do {
                try cache.store(zip(missing, embeddings).map { ($0.key, $1) }, model: modelDigest, templates: templateDigest,
                                dimension: encoder.dimension)
            } catch {
                report.cacheWriteError = String(describing: error)
            }
        }
    }
    report.cached = vocabulary.labels.count - report.encoded
    let width = dimension!
    var values: [Float] = []
    values.reserveCapacity(vocabulary.labels.count * width)
    for label in vocabulary.labels { values += known[label.key]! }
    return (LabelEmbeddings(labels: vocabulary.labels, dimension: width, values: values), report)
}
