import ArgumentParser
import Foundation
import SegwatchService
import SegwatchMedia

/// `segwatch models`: the published checkpoints, fetched into the cache by name.
struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List and fetch the published SAM, CLIP and DINOv2 checkpoints.",
        discussion: """
            Models are fetched from where their authors publish them (Meta's SAM, MobileSAM's \
            repository, OpenAI's CLIP files, and for CLIP also OpenAI's copies on the Hugging \
            Face hub, tried when the first source fails; Meta's DINOv2 on the hub) into $SEGWATCH_CACHE/models, else \
            $XDG_CACHE_HOME/segwatch/models, else ~/.cache/segwatch/models, each file checked \
            against its published SHA-256. An interrupted download resumes where it stopped. \
            Once fetched, a model's name can stand for its file: segwatch run video.mp4 --sam \
            mobile_sam --clip clip_vit_b16.
            """,
        subcommands: [List.self, Fetch.self]
    )

    struct CatalogOptions: ParsableArguments {
        @Option(help: ArgumentHelp("A JSON file of more models, or replacements: [{\"name\", \"kind\": \"sam\", \"clip\" or \"dino\", \"url\", \"sha256\"}], or with \"sources\": [{\"name\", \"files\": [{\"name\", \"url\", \"sha256\"}]}] for a model of several files or places (\"sha256\": null where none is published).", valueName: "file"))
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
                let fetched = cache.fetchedSource(entry)
                let path = fetched.map { cache.location(entry, $0).path }
                if json {
                    struct Line: Encodable {
                        var name, kind: String
                        var about: String?
                        var sources: [ModelSource]
                        var path: String?
                        var fetched: Bool
                    }
                    let line = Line(name: entry.name, kind: entry.kind.rawValue, about: entry.about, sources: entry.sources, path: path,
                                    fetched: fetched != nil)
                    print(try jsonString(line))
                } else {
                    let name = entry.name.padding(toLength: 18, withPad: " ", startingAt: 0)
                    let about = (entry.about ?? entry.kind.rawValue).padding(toLength: 38, withPad: " ", startingAt: 0)
                    let sources = "from " + entry.sources.map(\.name).joined(separator: ", then ")
                    print("\(name)\(about)\(path ?? "not fetched (\(sources))")")
                }
            }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download models into the cache, resuming and verifying.",
            discussion: """
                Prints each model's path when it is in place: its file, or the folder of a model \
                published as several files. A model already fetched is not downloaded again. Its \
                sources are tried in order (see 'segwatch models list'); when every one fails, \
                the error names each and says how to place the files by hand. SIGINT stops the \
                download and keeps what arrived: the same command resumes it. --base-url fetches \
                the same file names from a mirror.
                """)

        @Argument(help: "Model names (see 'segwatch models list').")
        var names: [String]

        @Option(help: ArgumentHelp("Fetch only from this source of each model (e.g. huggingface).", valueName: "name"))
        var source: String?

        @Option(help: ArgumentHelp("Fetch <url>/<file name> instead of each file's published URL (a mirror).", valueName: "url"))
        var baseURL: String?

        @Flag(help: "Fetch files whose source publishes no SHA-256, record the digest they arrive with, and hold every later fetch to it.")
        var trustOnFirstUse = false

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
                var sources = entry.sources
                if let source {
                    sources = sources.filter { $0.name == source }
                    guard !sources.isEmpty else {
                        throw ValidationError("\(ModelError.unknownSource(name: name, source: source, known: entry.sources.map(\.name)))")
                    }
                }
                if let baseURL {
                    let base = baseURL.hasSuffix("/") ? baseURL : baseURL + "/"
                    sources = sources.map { source in
                        var mirrored = source
                        mirrored.files = source.files.map { var file = $0; file.url = base + file.name; return file }
                        return mirrored
                    }
                }
                if let fetched = cache.fetchedSource(entry) {
                    print(cache.location(entry, fetched).path)
                    continue
                }
                let progress = Progress.onTerminal()
                var start = Date(), current = ""
                do {
                    let location = try cache.fetch(entry, from: sources, trustOnFirstUse: trustOnFirstUse, gate: gate) { file, done, total in
                        if current != file.url {
                            (current, start) = (file.url, Date())
                            progress.clear()
                            printError("fetching \(name): \(file.name) from \(file.url)")
                        }
                        let rate = String(format: "%.1f MB/s", Double(done) / 1_048_576 / max(Date().timeIntervalSince(start), 0.001))
                        guard let total, total > 0 else {
                            return progress.update(String(format: "%@ %.1f MB, ", file.name, Double(done) / 1_048_576) + rate)
                        }
                        progress.bar(file.name, done: Int(done >> 20), total: Int(total >> 20), unit: "MB", detail: rate)
                    }
                    progress.clear()
                    print(location.path)
                } catch {
                    progress.clear()
                    printError("\(error)")
                    throw ExitCode(ShutdownSignal.shared.caughtSignal != nil ? 130 : 1)
                }
            }
        }
    }
}

/// `--sam`, `--clip` and `--dino` values: a path as it is, or a model name as its file in the cache.
enum ModelArgument {
    static func sam(_ value: String) throws -> String { try resolve(value, .sam) }
    static func clip(_ value: String) throws -> String { try resolve(value, .clip) }
    static func dino(_ value: String) throws -> String { try resolve(value, .dino) }

    private static func resolve(_ value: String, _ kind: ModelEntry.Kind) throws -> String {
        do { return try ModelCache.standard.resolve(value, kind: kind) } catch { throw ValidationError("\(error)") }
    }
}
