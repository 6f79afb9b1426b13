import Foundation
import SegwatchService
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchMedia

/// One file of a model as a source publishes it.
struct ModelFile: Codable, Sendable, Equatable {
    /// The file's name in the model's folder (and under a mirror's base URL).
    var name: String
    var url: String
    /// The published SHA-256, or nil where the source publishes none: the first fetch then
    /// needs `--trust-on-first-use`, and pins the digest it got from then on.
    var sha256: String?
}

/// Where a model is published: one checkpoint file (SAM's `.pth`, OpenAI's `.pt`) or the
/// files of a folder (the transformers layout: `config.json` and the weights).
struct ModelSource: Codable, Sendable, Equatable {
    /// A short name: the folder of a multi-file source in the cache, and what errors call it.
    var name: String
    var files: [ModelFile]
    /// Where the digests come from.
    var digests: String?

    var isFolder: Bool { files.count > 1 }
}

/// A published model segwatch can fetch: its sources, tried in order.
struct ModelEntry: Decodable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable { case sam, clip }

    var name: String
    var kind: Kind
    var sources: [ModelSource]
    var about: String?

    init(name: String, kind: Kind, sources: [ModelSource], about: String?) {
        (self.name, self.kind, self.sources, self.about) = (name, kind, sources, about)
    }

    /// One file from one place (`source`), named after the URL's last component.
    init(name: String, kind: Kind, source: String, url: String, sha256: String, about: String?) {
        let file = ModelFile(name: String(url.split(separator: "/").last ?? Substring(name)), url: url, sha256: sha256)
        self.init(name: name, kind: kind, sources: [ModelSource(name: source, files: [file])], about: about)
    }

    private enum Keys: String, CodingKey { case name, kind, about, sources, url, sha256 }

    /// A catalog file's entry: `sources`, or the short form of one file, `url` and `sha256`
    /// (`"sha256": null` where no digest is published: said, never left out by mistake).
    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let (name, kind) = (try container.decode(String.self, forKey: .name), try container.decode(Kind.self, forKey: .kind))
        let about = try container.decodeIfPresent(String.self, forKey: .about)
        if container.contains(.sources) {
            self.init(name: name, kind: kind, sources: try container.decode([ModelSource].self, forKey: .sources), about: about)
        } else {
            let url = try container.decode(String.self, forKey: .url)
            guard container.contains(.sha256) else {
                throw DecodingError.keyNotFound(Keys.sha256, .init(codingPath: container.codingPath,
                                                                   debugDescription: "no sha256 (null where none is published)"))
            }
            let file = ModelFile(name: String(url.split(separator: "/").last ?? Substring(name)), url: url,
                                 sha256: try container.decodeIfPresent(String.self, forKey: .sha256))
            self.init(name: name, kind: kind, sources: [ModelSource(name: "published", files: [file])], about: about)
        }
    }
}

/// The models `segwatch models` knows, from where their authors publish them: Meta's SAM,
/// MobileSAM's repository, OpenAI's CLIP files (whose URLs carry their SHA-256) and, for when
/// OpenAI's host fails (it has answered 404 since October 2025: openai/CLIP issue 516), the
/// transformers-layout copies OpenAI published on the Hugging Face hub.
enum ModelCatalog {
    /// OpenAI's CLIP on the hub: `config.json` (in git, not Git LFS: no SHA-256 is published
    /// for it) and `pytorch_model.bin`, whose SHA-256 is the hub's Git LFS listing of the file.
    private static func hub(_ repository: String, weights: String, listing: String) -> ModelSource {
        let base = "https://huggingface.co/openai/\(repository)/resolve/main/"
        return ModelSource(name: "huggingface", files: [
            ModelFile(name: "config.json", url: base + "config.json", sha256: nil),
            ModelFile(name: "pytorch_model.bin", url: base + "pytorch_model.bin", sha256: weights),
        ], digests: "pytorch_model.bin: Git LFS details of \(listing); config.json: none published")
    }

    private static func openAI(_ digest: String, _ file: String) -> ModelSource {
        ModelSource(name: "openai", files: [ModelFile(name: file, url: "https://openaipublic.azureedge.net/clip/models/\(digest)/\(file)",
                                                       sha256: digest)],
                    digests: "the URL (openai/CLIP clip/clip.py _MODELS)")
    }

    static let builtIn: [ModelEntry] = [
        ModelEntry(name: "mobile_sam", kind: .sam, source: "github", url: "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
                   sha256: "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f", about: "MobileSAM (TinyViT), 39 MB"),
        ModelEntry(name: "sam_vit_b", kind: .sam, source: "meta", url: "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
                   sha256: "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", about: "SAM ViT-B, 358 MB"),
        ModelEntry(name: "sam_vit_l", kind: .sam, source: "meta", url: "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
                   sha256: "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", about: "SAM ViT-L, 1.2 GB"),
        ModelEntry(name: "sam_vit_h", kind: .sam, source: "meta", url: "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
                   sha256: "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", about: "SAM ViT-H, 2.4 GB"),
        ModelEntry(name: "clip_vit_b16", kind: .clip, sources: [
            openAI("5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", "ViT-B-16.pt"),
            // The file as added in the repository's first commit ("add model", 0bcfab3), unchanged since.
            hub("clip-vit-base-patch16", weights: "ec89c7b09c749a60aae3c9cd910516f24b58214a7df060b48962d14c469cfbf0",
                listing: "https://huggingface.co/openai/clip-vit-base-patch16/blob/refs%2Fpr%2F4/pytorch_model.bin (add model, 0bcfab3)"),
        ], about: "OpenAI CLIP ViT-B/16, 335 MB"),
        ModelEntry(name: "clip_vit_l14", kind: .clip, sources: [
            openAI("b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", "ViT-L-14.pt"),
            hub("clip-vit-large-patch14", weights: "f1a17cdbe0f36fec524f5cafb1c261ea3bbbc13e346e0f74fc9eb0460dedd0d3",
                listing: "https://huggingface.co/openai/clip-vit-large-patch14/blob/refs%2Fpr%2F4/pytorch_model.bin (add model, e4d7ab3)"),
        ], about: "OpenAI CLIP ViT-L/14, 890 MB"),
        ModelEntry(name: "clip_vit_l14_336", kind: .clip, sources: [
            openAI("3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", "ViT-L-14-336px.pt"),
            hub("clip-vit-large-patch14-336", weights: "c6032c2e0caae3dc2d4fba35535fa6307dbb49df59c7e182b1bc4b3329b81801",
                listing: "https://huggingface.co/openai/clip-vit-large-patch14-336/blob/main/pytorch_model.bin (add model, a2ab452)"),
        ], about: "OpenAI CLIP ViT-L/14 at 336, 891 MB"),
    ]

    /// The built-in entries, with those of `file` (a JSON array of entries: a mirror, or
    /// checkpoints of one's own) added or replacing the built-in ones of the same name.
    static func entries(adding file: String?) throws -> [ModelEntry] {
        guard let file else { return builtIn }
        let extra: [ModelEntry]
        do {
            extra = try JSONDecoder().decode([ModelEntry].self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        } catch let error as DecodingError {
            throw ModelError.badCatalog(file: file, reason: "\(describe(error)); expected a JSON array of {\"name\", \"kind\": \"sam\" or \"clip\", "
                                        + "\"url\", \"sha256\"} or {\"name\", \"kind\", \"sources\": [{\"name\", \"files\": [{\"name\", \"url\", \"sha256\"}]}]}")
        } catch {
            throw ModelError.badCatalog(file: file, reason: error.localizedDescription)
        }
        let safeName = #"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"#
        for entry in extra {
            guard entry.name.range(of: safeName, options: .regularExpression) != nil else {
                throw ModelError.badCatalog(file: file, reason: "model name '\(entry.name)': expected letters, digits, '_', '-' and '.'")
            }
            guard !entry.sources.isEmpty else { throw ModelError.badCatalog(file: file, reason: "model '\(entry.name)': no sources") }
            for source in entry.sources {
                guard source.name.range(of: safeName, options: .regularExpression) != nil, !source.files.isEmpty else {
                    throw ModelError.badCatalog(file: file, reason: "model '\(entry.name)': source '\(source.name)' needs a plain name and at least one file")
                }
                for item in source.files {
                    guard item.name.range(of: safeName, options: .regularExpression) != nil else {
                        throw ModelError.badCatalog(file: file, reason: "model '\(entry.name)': file name '\(item.name)': expected letters, digits, '_', '-' and '.'")
                    }
                    if let digest = item.sha256, digest.range(of: "^[0-9a-f]{64}$", options: .regularExpression) == nil {
                        throw ModelError.badCatalog(file: file, reason: "model '\(entry.name)': sha256 '\(digest)' is not 64 lowercase hex digits")
                    }
                }
            }
        }
        let names = Set(extra.map(\.name))
        return builtIn.filter { !names.contains($0.name) } + extra
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case let .keyNotFound(key, context): "entry \(context.codingPath.map(\.stringValue).joined(separator: ".")): missing '\(key.stringValue)'"
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
            "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        @unknown default: "\(error)"
        }
    }
}

enum ModelError: Error, CustomStringConvertible {
    case unknown(name: String, known: [String])
    case notFetched(name: String, path: String)
    case wrongKind(name: String, kind: ModelEntry.Kind, expected: ModelEntry.Kind)
    case badCatalog(file: String, reason: String)
    case digestMismatch(name: String, url: String, expected: String, actual: String, pinned: Bool)
    case unpinned(name: String, source: String, files: [String])
    case allSourcesFailed(name: String, failures: [(source: String, reason: String)], byHand: String)
    case unknownSource(name: String, source: String, known: [String])
    case busy(name: String, lock: String)
    case interrupted(name: String, partial: String, reason: String)
    case unwritable(path: String, reason: String)

    var description: String {
        switch self {
        case let .unknown(name, known):
            "'\(name)' is neither a file nor a model name (\(known.joined(separator: ", ")); see 'segwatch models list')"
        case let .notFetched(name, path):
            "model '\(name)' is not in the cache (\(path)); fetch it with 'segwatch models fetch \(name)'"
        case let .wrongKind(name, kind, expected): "'\(name)' is a \(kind.rawValue) model; expected a \(expected.rawValue) model"
        case let .badCatalog(file, reason): "\(file): \(reason)"
        case let .digestMismatch(name, url, expected, actual, pinned):
            "\(name): the file from \(url) has SHA-256 \(actual); \(pinned ? "its first fetch pinned" : "the catalog says") \(expected). "
                + "It was removed; nothing was installed"
        case let .unpinned(name, source, files):
            "\(name): \(source) publishes no SHA-256 for \(files.joined(separator: " and ")); with --trust-on-first-use the first fetch "
                + "records the digest it gets and holds every later fetch to it"
        case let .allSourcesFailed(name, failures, byHand):
            "\(name): every source failed:\n" + failures.map { "  \($0.source): \($0.reason)" }.joined(separator: "\n") + "\n" + byHand
        case let .unknownSource(name, source, known): "\(name) has no source '\(source)' (it has \(known.joined(separator: ", ")))"
        case let .busy(name, lock): "\(name): another segwatch is fetching it (\(lock) is locked)"
        case let .interrupted(name, partial, reason):
            "\(name): download interrupted (\(reason)); \(partial) keeps what arrived, and the same command resumes it"
        case let .unwritable(path, reason): "cannot write \(path): \(reason)"
        }
    }
}

/// The models folder of the cache: `<cache>/models/<name>/<file>` for a model published as
/// one file, `<cache>/models/<name>/<source>/<file>` for one published as a folder; `<file>.part`
/// while a download is under way, `<file>.sha256` once it is verified; `.<name>.lock` held by
/// the one process fetching a model; `pins.json` the digests recorded on first use.
struct ModelCache {
    let directory: URL

    /// `models` in segwatch's cache folder (`$SEGWATCH_CACHE`, else `$XDG_CACHE_HOME/segwatch`,
    /// else `~/.cache/segwatch`).
    static var standard: ModelCache { ModelCache(directory: VocabularyCache.defaultDirectory.appendingPathComponent("models")) }

    /// What the loaders open: the source's file, or its folder.
    func location(_ entry: ModelEntry, _ source: ModelSource) -> URL {
        let folder = directory.appendingPathComponent(entry.name)
        return source.isFolder ? folder.appendingPathComponent(source.name) : folder.appendingPathComponent(source.files[0].name)
    }

    func path(_ file: ModelFile, of source: ModelSource, _ entry: ModelEntry) -> URL {
        source.isFolder ? location(entry, source).appendingPathComponent(file.name) : location(entry, source)
    }

    /// The digest a file must have: the published one, else the one pinned at its first fetch.
    func expectedDigest(_ file: ModelFile, of source: ModelSource, _ entry: ModelEntry) -> String? {
        file.sha256 ?? pins()[Self.pinKey(file, source, entry)]
    }

    /// The first source of `entry` whose files are all in the cache, verified.
    func fetchedSource(_ entry: ModelEntry) -> ModelSource? {
        entry.sources.first { source in
            source.files.allSatisfy { file in
                expectedDigest(file, of: source, entry).map { verifiedDigest(of: path(file, of: source, entry)) == $0 } ?? false
            }
        }
    }

    func isFetched(_ entry: ModelEntry) -> Bool { fetchedSource(entry) != nil }

    /// A `--sam` or `--clip` argument as a path: a model name's file or folder in the cache;
    /// anything else as it is, for the loader to open or to report missing in its own words.
    func resolve(_ argument: String, kind: ModelEntry.Kind) throws -> String {
        if FileManager.default.fileExists(atPath: argument) || argument.contains("/") { return argument }
        if let entry = ModelCatalog.builtIn.first(where: { $0.name == argument }) {
            guard entry.kind == kind else { throw ModelError.wrongKind(name: argument, kind: entry.kind, expected: kind) }
            guard let source = fetchedSource(entry) else {
                throw ModelError.notFetched(name: argument, path: directory.appendingPathComponent(argument).path)
            }
            return location(entry, source).path
        }
        // A model fetched from a catalog of one's own: a verified file in its folder, else a
        // folder whose files are all verified.
        let folder = directory.appendingPathComponent(argument)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
        if let name = names.first(where: { verifiedDigest(of: folder.appendingPathComponent($0)) != nil }) {
            return folder.appendingPathComponent(name).path
        }
        for name in names {
            let source = folder.appendingPathComponent(name)
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: source.path)) ?? [])
                .filter { !$0.hasSuffix(".sha256") && !$0.hasSuffix(".part") }
            if !files.isEmpty, files.allSatisfy({ verifiedDigest(of: source.appendingPathComponent($0)) != nil }) { return source.path }
        }
        return argument
    }

    /// The digest recorded when `file` was verified, if the file is still the one verified
    /// (same size): a multi-gigabyte checkpoint is not hashed again on every run.
    func verifiedDigest(of file: URL) -> String? {
        guard let record = try? String(contentsOf: file.appendingPathExtension("sha256"), encoding: .utf8),
              let attributes = try? FileManager.default.attributesOfItem(atPath: file.path),
              let size = (attributes[.size] as? NSNumber)?.int64Value else { return nil }
        let fields = record.split(separator: " ")
        guard fields.count >= 2, Int64(fields[1].trimmingCharacters(in: .whitespacesAndNewlines)) == size else { return nil }
        return String(fields[0])
    }

    /// Fetches `entry` from the first of `sources` that delivers every file with its digest,
    /// resuming partial downloads and installing each file atomically. A file whose source
    /// publishes no digest is fetched only when `trustOnFirstUse`, and its digest is pinned.
    /// `progress` is called with the file, the bytes so far and the total when known.
    func fetch(_ entry: ModelEntry, from sources: [ModelSource], trustOnFirstUse: Bool, gate: InterruptGate, retries: Int = 3,
               progress: (ModelFile, Int64, Int64?) -> Void) throws -> URL {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw ModelError.unwritable(path: directory.path, reason: error.localizedDescription)
        }
        // One download per model at a time: a second fetch would write the same parts.
        let lockPath = directory.appendingPathComponent(".\(entry.name).lock").path
        let lock = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw ModelError.unwritable(path: lockPath, reason: String(cString: strerror(errno))) }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else { throw ModelError.busy(name: entry.name, lock: lockPath) }
        if let source = fetchedSource(entry) { return location(entry, source) }
        // Files put in place by hand are taken, once checked, before anything is downloaded.
        for source in sources where source.files.allSatisfy({ FileManager.default.fileExists(atPath: path($0, of: source, entry).path) }) {
            let digests = source.files.map { try? sha256(of: path($0, of: source, entry)) }
            let expected = source.files.map { expectedDigest($0, of: source, entry) }
            guard zip(digests, expected).allSatisfy({ $0 != nil && ($1 == nil ? trustOnFirstUse : $0 == $1) }) else { continue }
            for (file, digest) in zip(source.files, digests) {
                let target = path(file, of: source, entry)
                try record(digest!, of: target)
                try? FileManager.default.removeItem(at: target.appendingPathExtension("part"))
                if expectedDigest(file, of: source, entry) == nil { try pin(digest!, Self.pinKey(file, source, entry)) }
            }
            return location(entry, source)
        }

        var failures: [(source: String, error: ModelError)] = []
        for source in sources {
            let unpinned = source.files.filter { expectedDigest($0, of: source, entry) == nil }
            if !unpinned.isEmpty, !trustOnFirstUse {
                failures.append((source.name, .unpinned(name: entry.name, source: source.name, files: unpinned.map(\.name))))
                continue
            }
            do {
                for file in source.files {
                    let expected = expectedDigest(file, of: source, entry)
                    let digest = try fetchFile(file, to: path(file, of: source, entry), expected: expected, pinned: file.sha256 == nil,
                                               model: entry.name, gate: gate, retries: retries) { progress(file, $0, $1) }
                    if expected == nil { try pin(digest, Self.pinKey(file, source, entry)) }
                }
                return location(entry, source)
            } catch let error as ModelError {
                if gate.isStopped { throw error }
                failures.append((source.name, error))
            }
        }
        if failures.count == 1 { throw failures[0].error }
        throw ModelError.allSourcesFailed(name: entry.name, failures: failures.map { ($0.source, $0.error.description) },
                                          byHand: byHand(entry, sources))
    }

    /// How to place a model's files by hand.
    private func byHand(_ entry: ModelEntry, _ sources: [ModelSource]) -> String {
        let ways = sources.map { source in
            let files = source.files.map { file in file.name + (file.sha256.map { " (SHA-256 \($0))" } ?? "") }.joined(separator: " and ")
            return "put \(files) in \((source.isFolder ? location(entry, source) : location(entry, source).deletingLastPathComponent()).path)/"
        }
        return "To place the files by hand, " + ways.joined(separator: ", or ")
            + "; then 'segwatch models fetch \(entry.name)' checks them (with --trust-on-first-use for a file without a published SHA-256)."
    }

    /// Downloads `file` to `target` unless it is there, verified; returns its digest, which
    /// must be `expected` when there is one (`pinned`: recorded on first use, not published).
    private func fetchFile(_ file: ModelFile, to target: URL, expected: String?, pinned: Bool, model: String, gate: InterruptGate,
                           retries: Int, progress: (Int64, Int64?) -> Void) throws -> String {
        if let expected, verifiedDigest(of: target) == expected { return expected }
        do {
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw ModelError.unwritable(path: target.deletingLastPathComponent().path, reason: error.localizedDescription)
        }
        let partial = target.appendingPathExtension("part")
        // A file put there by hand counts once its digest is checked.
        if FileManager.default.fileExists(atPath: target.path), let digest = try? sha256(of: target), expected == nil || digest == expected {
            try record(digest, of: target)
            try? FileManager.default.removeItem(at: partial)
            return digest
        }
        var failures = 0, restarted = false
        while true {
            do {
                let (digest, resumed) = try download(url: file.url, to: partial, gate: gate, progress: progress)
                if let expected, digest != expected {
                    try? FileManager.default.removeItem(at: partial)
                    // A resumed file may be wrong in its first part; one fresh download decides.
                    if resumed && !restarted { restarted = true; continue }
                    throw ModelError.digestMismatch(name: model, url: file.url, expected: expected, actual: digest, pinned: pinned)
                }
                try install(partial, as: target, digest: digest)
                return digest
            } catch let error as MediaError {
                if case .cancelled = error { throw ModelError.interrupted(name: model, partial: partial.path, reason: "stopped") }
                failures += 1
                guard failures <= retries else {
                    throw ModelError.interrupted(name: model, partial: partial.path, reason: error.description)
                }
                Thread.sleep(forTimeInterval: min(8, 0.5 * Double(1 << failures)))
            } catch RestartDownload.serverIgnoredRange {
                try? FileManager.default.removeItem(at: partial)
                guard !restarted else { throw ModelError.interrupted(name: model, partial: partial.path, reason: "the server sent more than the file") }
                restarted = true
            }
        }
    }

    private static func pinKey(_ file: ModelFile, _ source: ModelSource, _ entry: ModelEntry) -> String {
        "\(entry.name)/\(source.name)/\(file.name)"
    }

    private var pinsFile: URL { directory.appendingPathComponent("pins.json") }

    /// The digests pinned on first use, by `model/source/file`.
    private func pins() -> [String: String] {
        guard let data = try? Data(contentsOf: pinsFile) else { return [:] }
        return (try? JSONDecoder().decode([String: String].self, from: data)) ?? [:]
    }

    private func pin(_ digest: String, _ key: String) throws {
        var pins = pins()
        pins[key] = digest
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(pins).write(to: pinsFile, options: .atomic)
        } catch {
            throw ModelError.unwritable(path: pinsFile.path, reason: error.localizedDescription)
        }
    }

    private enum RestartDownload: Error { case serverIgnoredRange }

    /// Appends what `url` has past `partial`'s size to it, and returns the SHA-256 of the
    /// whole file and whether it resumed a part. Throws MediaError when the transfer breaks
    /// off (the part is kept).
    private func download(url: String, to partial: URL, gate: InterruptGate,
                          progress: (Int64, Int64?) -> Void) throws -> (digest: String, resumed: Bool) {
        if !FileManager.default.fileExists(atPath: partial.path) {
            guard FileManager.default.createFile(atPath: partial.path, contents: nil) else {
                throw ModelError.unwritable(path: partial.path, reason: "cannot create the file")
            }
        }
        let handle: FileHandle
        do { handle = try FileHandle(forUpdating: partial) } catch {
            throw ModelError.unwritable(path: partial.path, reason: error.localizedDescription)
        }
        defer { try? handle.close() }
        // The bytes already here count towards the digest.
        var hasher = SHA256()
        var offset: Int64 = 0
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                chunk.withUnsafeBytes { hasher.update($0) }
                offset += Int64(chunk.count)
            }
        } catch {
            throw ModelError.unwritable(path: partial.path, reason: "cannot read the partial download: \(error.localizedDescription)")
        }
        var resumed = offset > 0
        var remote: RemoteFile
        switch Result(catching: { () throws(MediaError) in try RemoteFile(url: url, offset: offset, gate: gate) }) {
        case let .success(opened): remote = opened
        case let .failure(error):
            // FFmpeg refuses a server that answers a Range request with the whole file. If the
            // server answers from the start, it is reachable and cannot resume: start over.
            guard resumed, !gate.isStopped, let fresh = try? RemoteFile(url: url, gate: gate) else { throw error }
            do { try handle.truncate(atOffset: 0) } catch {
                throw ModelError.unwritable(path: partial.path, reason: error.localizedDescription)
            }
            hasher = SHA256()
            offset = 0
            resumed = false
            remote = fresh
        }
        if let size = remote.size, offset > size { throw RestartDownload.serverIgnoredRange }
        progress(offset, remote.size)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let count = try remote.read(into: buffer)
            if count == 0 { break }
            do { try handle.write(contentsOf: Data(bytes: buffer.baseAddress!, count: count)) } catch {
                throw ModelError.unwritable(path: partial.path, reason: error.localizedDescription)
            }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            offset += Int64(count)
            if let size = remote.size, offset > size { throw RestartDownload.serverIgnoredRange }
            progress(offset, remote.size)
        }
        if let size = remote.size, offset < size {
            throw MediaError.truncated(input: remote.name, decoded: Int(offset), expected: Int(size), reason: "the connection ended early")
        }
        do { try handle.synchronize() } catch {
            throw ModelError.unwritable(path: partial.path, reason: error.localizedDescription)
        }
        return (hasher.hexDigest(), resumed)
    }

    private func sha256(of file: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.hexDigest()
    }

    /// Renames the verified part over the target and records its digest and size.
    private func install(_ partial: URL, as target: URL, digest: String) throws {
        guard rename(partial.path, target.path) == 0 else {
            throw ModelError.unwritable(path: target.path, reason: String(cString: strerror(errno)))
        }
        try record(digest, of: target)
    }

    /// Writes `<file>.sha256`: the digest and the size it was computed at.
    private func record(_ digest: String, of file: URL) throws {
        let size = ((try? FileManager.default.attributesOfItem(atPath: file.path))?[.size] as? NSNumber)?.int64Value ?? 0
        let record = file.appendingPathExtension("sha256")
        do { try "\(digest) \(size)\n".write(to: record, atomically: true, encoding: .utf8) } catch {
            throw ModelError.unwritable(path: record.path, reason: error.localizedDescription)
        }
    }
}
