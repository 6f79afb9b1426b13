import ArgumentParser
import Foundation
import SegwatchService
import SegwatchMedia

/// `segwatch models`: the published checkpoints, fetched into the cache by name.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List and fetch the published SAM and CLIP checkpoints.",
        discussion: """
            Models are fetched from where their authors publish them (Meta's SAM, MobileSAM's \
            repository, OpenAI's CLIP files) into $SEGWATCH_CACHE/models, else \
            $XDG_CACHE_HOME/segwatch/models, else ~/.cache/segwatch/models, each checked against \
            its published SHA-256. An interrupted download resumes where it stopped. Once \
            fetched, a model's name can stand for its file: segwatch run video.mp4 --sam \
            mobile_sam --clip clip_vit_b16.
            """,
        subcommands: [List.self, Fetch.self]
    )

    struct CatalogOptions: ParsableArguments {
        @Option(help: ArgumentHelp("A JSON file of more models, or replacements: [{\"name\", \"kind\": \"sam\" or \"clip\", \"url\", \"sha256\"}].", valueName: "file"))
        var catalog: String?

        func entries() throws -> [ModelEntry] {
            do { return try ModelCatalog.entries(adding: catalog) } catch { throw ValidationError("\(error)") }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The models segwatch can fetch, and which are in the cache.")

        @OptionGroup var options: CatalogOptions

        @Flag(help: "One JSON object per model.")
        var json = false

        func run() throws {
            let cache = ModelCache.standard
            for entry in try options.entries() {
                let fetched = cache.isFetched(entry)
                if json {
                    struct Line: Encodable { var name, kind, url, sha256: String; var about: String?; var path: String?; var fetched: Bool }
                    let line = Line(name: entry.name, kind: entry.kind.rawValue, url: entry.url, sha256: entry.sha256, about: entry.about,
                                    path: fetched ? cache.file(entry).path : nil, fetched: fetched)
                    print(String(decoding: try JSONEncoder().encode(line), as: UTF8.self))
                } else {
                    let name = entry.name.padding(toLength: 18, withPad: " ", startingAt: 0)
                    let about = (entry.about ?? entry.kind.rawValue).padding(toLength: 38, withPad: " ", startingAt: 0)
                    print("\(name)\(about)\(fetched ? cache.file(entry).path : "not fetched")")
                }
            }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download models into the cache, resuming and verifying.",
            discussion: """
                Prints each model's path when it is in place. A model already fetched is not \
                downloaded again. SIGINT stops the download and keeps what arrived: the same \
                command resumes it. --base-url fetches the same file names from a mirror.
                """)

        @Argument(help: "Model names (see 'segwatch models list').")
        var names: [String]

        @Option(help: ArgumentHelp("Fetch <url>/<file name> instead of each model's published URL (a mirror).", valueName: "url"))
        var baseURL: String?

        @OptionGroup var options: CatalogOptions

        func validate() throws {
            if names.isEmpty { throw ValidationError("name at least one model (see 'segwatch models list')") }
        }

        func run() throws {
            let entries = try options.entries()
            let cache = ModelCache.standard
            let gate = InterruptGate()
            ShutdownSignal.shared.install()
            ShutdownSignal.shared.onSignal { gate.stop() }
            for name in names {
                guard let entry = entries.first(where: { $0.name == name }) else {
                    throw ValidationError("\(ModelError.unknown(name: name, known: entries.map(\.name)))")
                }
                let url = baseURL.map { $0.hasSuffix("/") ? $0 + entry.fileName : $0 + "/" + entry.fileName } ?? entry.url
                if cache.isFetched(entry) {
                    print(cache.file(entry).path)
                    continue
                }
                printError("fetching \(name) from \(url)")
                let progress = Progress.onTerminal()
                let start = Date()
                do {
                    let file = try cache.fetch(entry, from: url, gate: gate) { done, total in
                        let rate = String(format: "%.1f MB/s", Double(done) / 1_048_576 / max(Date().timeIntervalSince(start), 0.001))
                        guard let total, total > 0 else { return progress.update(String(format: "%@ %.1f MB, ", name, Double(done) / 1_048_576) + rate) }
                        progress.bar(name, done: Int(done >> 20), total: Int(total >> 20), unit: "MB", detail: rate)
                    }
                    progress.clear()
                    print(file.path)
                } catch {
                    progress.clear()
                    printError("\(error)")
                    throw ExitCode(ShutdownSignal.shared.caughtSignal != nil ? 130 : 1)
                }
            }
        }
    }
}

/// `--sam` and `--clip` values: a path as it is, or a model name as its file in the cache.
enum ModelArgument {
    static func sam(_ value: String) throws -> String { try resolve(value, .sam) }
    static func clip(_ value: String) throws -> String { try resolve(value, .clip) }

    private static func resolve(_ value: String, _ kind: ModelEntry.Kind) throws -> String {
        do { return try ModelCache.standard.resolve(value, kind: kind) } catch { throw ValidationError("\(error)") }
    }
}
