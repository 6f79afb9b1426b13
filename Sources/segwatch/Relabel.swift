import SegwatchBackends
import ArgumentParser
import Foundation
import SegwatchService
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

    @Option(help: ArgumentHelp("The segment store: a SQLite file or a postgres:// URL.", valueName: "store"))
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

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard !vocabulary.isEmpty else { throw ValidationError("give --label (repeatable) or --vocab FILE") }
        guard (0...1).contains(minScore) else { throw ValidationError("--min-score must be in 0...1, not \(minScore)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
    }

    func run() throws {
        try runReporting {
            let backend = try backendOptions.open(threads: threads)
            let searcher = TrackSearcher(store: try openExistingStore(store), location: store, cache: vocabulary.cacheStore(),
                                         embedder: { try VocabularyEmbedder(clipPath: $0, backend: backend) })
            let words = try vocabulary.resolve()
            let progress = Progress.onTerminal()
            let (digest, relabeled) = try searcher.relabel(
                words.vocabulary, templates: vocabulary.templateTexts.isEmpty && vocabulary.templates == nil ? nil : words.templates,
                background: background, minScore: minScore, filter: tracks.filter, clip: clip,
                progress: { progress.bar("encoding the vocabulary", done: $0, total: $1, unit: "prompts") }, warn: { printError("warning: \($0)") })
            progress.clear()
            var counts: [String: Int] = [:]
            for label in relabeled { counts[label.label, default: 0] += 1 }
            if json {
                print(try jsonText(["vocabulary": digest, "tracks": relabeled.count, "labels": counts] as [String: Any]))
            } else {
                let summary = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                print("\(relabeled.count) tracks relabeled under vocabulary \(digest)" + (summary.isEmpty ? "" : ": " + summary.joined(separator: ", ")))
            }
        }
    }
}
