import ArgumentParser
import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchPipeline
import SegwatchService
import SegwatchStore
import SegwatchTensor

/// `segwatch relabel`: stored tracks classified again under another vocabulary.
struct Relabel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Label stored tracks again under another vocabulary, from their stored embeddings.",
        discussion: """
            Each track's stored embedding (the normalized mean of its segments') is classified \
            against the new vocabulary as the labeling classifies a segment (the runs' CLIP model \
            and prompt templates, the background prompts unless --no-background), without \
            decoding any video. The new labels are kept beside the run's own, keyed by the \
            vocabulary's digest: 'segwatch search' shows them and --label finds them. Relabeling \
            again under the same vocabulary replaces its labels.
            """)

    @Option(help: ArgumentHelp("The segment store.", valueName: "store.sqlite"))
    var store: String

    @OptionGroup(title: "Vocabulary") var vocabulary: VocabularyOptions

    @OptionGroup(title: "Which tracks") var tracks: TrackFilterOptions

    @Flag(inversion: .prefixedNo, help: "Compare every track also with the generic background prompts, as the labeling does.")
    var background = true

    @Option(help: "A track whose best probability is below this is unknown.")
    var minScore: Float = 0

    @Option(help: "CLIP model (default: the one the runs recorded); it must be the runs' model.", transform: ModelArgument.clip)
    var clip: String?

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    @Option(help: "Threads for inference.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard !vocabulary.isEmpty else { throw ValidationError("give --label (repeatable) or --vocab FILE") }
        guard (0...1).contains(minScore) else { throw ValidationError("--min-score must be in 0...1, not \(minScore)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
    }

    func run() throws {
        try runReporting {
            let segmentStore = try openExistingStore(store)
            let cache = vocabulary.cacheStore()
            let backend = CPUBackend(engine: CPUEngine(threads: threads))
            let searcher = TrackSearcher(store: segmentStore, location: store, cache: cache,
                                         embedder: { try VocabularyEmbedder(clipPath: $0, backend: backend) })
            let space = try searcher.embeddingSpace(camera: tracks.camera, clip: clip)
            var words = try vocabulary.resolve()
            // The runs' templates, unless others are asked for: the new labels then live where the run's did.
            if vocabulary.templateTexts.isEmpty && vocabulary.templates == nil { words.templates = space.templates }
            let embedder = try VocabularyEmbedder(clipPath: space.clip, backend: backend)
            let progress = Progress.onTerminal()
            let (labels, backgroundLabels) = try embedder.labelsAndBackground(
                words.vocabulary, templates: words.templates, background: background, cache: cache,
                progress: { progress.bar("encoding the vocabulary", done: $0, total: $1, unit: "prompts") }, warn: { printError("warning: \($0)") })
            progress.clear()
            guard labels.dimension == space.dimension else {
                throw CommandError("the vocabulary's embeddings have \(labels.dimension) values and the tracks' \(space.dimension)")
            }
            var options = ClassifierOptions()
            options.minimumProbability = minScore
            let classifier = SegmentClassifier(labels: labels, background: backgroundLabels, logitScale: embedder.clip.logitScale, options: options)
            let candidates = try segmentStore.candidates(tracks.filter).filter { $0.embedding.count == space.dimension }
            var relabeled: [TrackLabel] = []
            for start in stride(from: 0, to: candidates.count, by: 4096) {
                let chunk = candidates[start..<min(start + 4096, candidates.count)]
                let results = try classifier.classify(chunk.map(\.embedding))
                for (candidate, result) in zip(chunk, results) {
                    relabeled.append(TrackLabel(id: candidate.id, label: result.label.map { labels.labels[$0].name } ?? "unknown",
                                                score: Double(result.score)))
                }
            }
            let digest = StoreSink.vocabularyDigest(labels)
            try segmentStore.saveLabeling(VocabularyRecord(digest: digest, labels: labels.labels.map(\.name), clipDigest: hexDigest(space.digest),
                                                           created: storeTime(Date())), labels: relabeled)
            var counts: [String: Int] = [:]
            for label in relabeled { counts[label.label, default: 0] += 1 }
            if json {
                let object: [String: Any] = ["vocabulary": digest, "tracks": relabeled.count, "labels": counts]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            } else {
                let summary = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                print("\(relabeled.count) tracks relabeled under vocabulary \(digest)" + (summary.isEmpty ? "" : ": " + summary.joined(separator: ", ")))
            }
        }
    }
}
