import SegwatchBackends
import ArgumentParser
import Dispatch
import Foundation
import SegwatchService
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchTensor

/// `segwatch vocab`: embeds a vocabulary into the cache, ahead of the commands that label.
struct Vocab: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed a vocabulary of labels with CLIP's text tower and cache it.",
        discussion: """
            Each label is put into every prompt template ('a photo of a {}.' ...), once per \
            synonym (car|automobile); its embedding is the normalized mean of the normalized \
            prompt embeddings. Embeddings are cached per model content, template set and label, \
            so a vocabulary is encoded once: later runs, and a vocabulary with a few new labels, \
            encode only what the cache lacks. Run this ahead of 'segwatch run' to have a large \
            vocabulary ready.

            --out FILE.safetensors writes labels.embeds ([labels, D], unit rows), with the \
            label names in the file's metadata ('labels', a JSON array).
            """)

    @Option(help: "CLIP model: a transformers or open_clip folder, OpenAI's .pt file, or a model name (segwatch models list).", transform: ModelArgument.clip)
    var clip: String

    @OptionGroup var vocabulary: VocabularyOptions

    @Option(help: "Write the label embeddings to FILE.safetensors.")
    var out: String?

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    @Option(help: "Threads for inference.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard !vocabulary.isEmpty else { throw ValidationError("give --label (repeatable) or --vocab FILE") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
        if let out, !out.hasSuffix(".safetensors") { throw ValidationError("--out must end in .safetensors, not '\(out)'") }
    }

    func run() throws {
        try runReporting {
            let start = DispatchTime.now()
            let (embeddings, report) = try vocabulary.embeddings(vocabulary.resolve(), clip: clip, backend: try backendOptions.open(threads: threads))
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            if let out {
                let names = String(decoding: try JSONEncoder().encode(embeddings.labels.map(\.name)), as: UTF8.self)
                let tensor = Tensor(shape: [embeddings.labels.count, embeddings.dimension], values: embeddings.values)
                try writeSafeTensors([("labels.embeds", .float32(tensor))], metadata: ["labels": names], to: out)
            }
            if json {
                print(try jsonString(Summary(labels: embeddings.labels.count, dimension: embeddings.dimension, cached: report.cached,
                                             encoded: report.encoded, seconds: seconds, cache: report.cacheFile)))
            } else {
                print("\(embeddings.labels.count) labels, \(embeddings.dimension) values each: \(report.cached) from the cache, "
                      + "\(report.encoded) encoded, in \(String(format: "%.2f", seconds)) s")
                if let file = report.cacheFile { print("cache: \(file)") }
            }
        }
    }

    private struct Summary: Encodable {
        let labels: Int, dimension: Int, cached: Int, encoded: Int
        let seconds: Double
        let cache: String?
    }
}
