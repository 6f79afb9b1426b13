import Foundation
import SegwatchService
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchMedia

/// A published checkpoint segwatch can fetch: where its authors publish it and its SHA-256.
struct ModelEntry: Codable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable { case sam, clip }

    var name: String
    var kind: Kind
    var url: String
    var sha256: String
    var about: String?

    /// The file's name in the cache: the URL's last component.
    var fileName: String { String(url.split(separator: "/").last ?? Substring(name)) }
}

/// The checkpoints `segwatch models` knows, from their official locations: Meta's SAM,
/// MobileSAM's repository, and OpenAI's CLIP files (whose URLs carry their SHA-256).
enum ModelCatalog {
    static let builtIn: [ModelEntry] = [
        ModelEntry(name: "mobile_sam", kind: .sam, url: "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
                   sha256: "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f", about: "MobileSAM (TinyViT), 39 MB"),
        ModelEntry(name: "sam_vit_b", kind: .sam, url: "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
                   sha256: "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", about: "SAM ViT-B, 358 MB"),
        ModelEntry(name: "sam_vit_l", kind: .sam, url: "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
                   sha256: "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", about: "SAM ViT-L, 1.2 GB"),
        ModelEntry(name: "sam_vit_h", kind: .sam, url: "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
                   sha256: "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", about: "SAM ViT-H, 2.4 GB"),
        ModelEntry(name: "clip_vit_b16", kind: .clip,
                   url: "https://openaipublic.azureedge.net/clip/models/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
                   sha256: "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", about: "OpenAI CLIP ViT-B/16, 335 MB"),
        ModelEntry(name: "clip_vit_l14", kind: .clip,
                   url: "https://openaipublic.azureedge.net/clip/models/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
                   sha256: "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", about: "OpenAI CLIP ViT-L/14, 890 MB"),
        ModelEntry(name: "clip_vit_l14_336", kind: .clip,
                   url: "https://openaipublic.azureedge.net/clip/models/3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
                   sha256: "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", about: "OpenAI CLIP ViT-L/14 at 336, 891 MB"),
    ]

    /// The built-in entries, with those of `file` (a JSON array of entries: a mirror, or
    /// checkpoints of one's own) added or replacing the built-in ones of the same name.
    static func entries(adding file: String?) throws -> [ModelEntry] {
        guard let file else { return builtIn }
        let extra: [ModelEntry]
        do {
            extra = try JSONDecoder().decode([ModelEntry].self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        } catch let error as DecodingError {
            throw ModelError.badCatalog(file: file, reason: "\(describe(error)); expected a JSON array of {\"name\", \"kind\": \"sam\" or \"clip\", \"url\", \"sha256\"}")
        } catch {
            throw ModelError.badCatalog(file: file, reason: error.localizedDescription)
        }
        for entry in extra {
            guard entry.name.range(of: #"^[A-Za-z0-9_.-]+$"#, options: .regularExpression) != nil, entry.name != ".", entry.name != ".." else {
                throw ModelError.badCatalog(file: file, reason: "model name '\(entry.name)': expected letters, digits, '_', '-' and '.'")
            }
            guard entry.sha256.range(of: "^[0-9a-f]{64}$", options: .regularExpression) != nil else {
                throw ModelError.badCatalog(file: file, reason: "model '\(entry.name)': sha256 '\(entry.sha256)' is not 64 lowercase hex digits")
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
    case digestMismatch(name: String, url: String, expected: String, actual: String)
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
        case let .digestMismatch(name, url, expected, actual):
            "\(name): the file from \(url) has SHA-256 \(actual); the catalog says \(expected). It was removed; nothing was installed"
        case let .busy(name, lock): "\(name): another segwatch is fetching it (\(lock) is locked)"
        case let .interrupted(name, partial, reason):
            "\(name): download interrupted (\(reason)); \(partial) keeps what arrived, and the same command resumes it"
        case let .unwritable(path, reason): "cannot write \(path): \(reason)"
        }
    }
}

/// The models folder of the cache: `<cache>/models/<name>/<file>`, with `<file>.part` while
/// a download is under way and `<file>.sha256` once it is verified; `.<name>.lock` is held
/// by the one process fetching a model.
struct ModelCache {
    let directory: URL

    /// `models` in segwatch's cache folder (`$SEGWATCH_CACHE`, else `$XDG_CACHE_HOME/segwatch`,
    /// else `~/.cache/segwatch`).
    static var standard: ModelCache { ModelCache(directory: VocabularyCache.defaultDirectory.appendingPathComponent("models")) }

    func file(_ entry: ModelEntry) -> URL {
        directory.appendingPathComponent(entry.name).appendingPathComponent(entry.fileName)
    }

    /// Whether `entry` is in the cache, verified.
    func isFetched(_ entry: ModelEntry) -> Bool {
        verifiedDigest(of: file(entry)) == entry.sha256
    }

    /// A `--sam` or `--clip` argument as a path: a model name's file in the cache; anything
    /// else as it is, for the loader to open or to report missing in its own words.
    func resolve(_ argument: String, kind: ModelEntry.Kind) throws -> String {
        if FileManager.default.fileExists(atPath: argument) || argument.contains("/") { return argument }
        if let entry = ModelCatalog.builtIn.first(where: { $0.name == argument }) {
            guard entry.kind == kind else { throw ModelError.wrongKind(name: argument, kind: entry.kind, expected: kind) }
            guard isFetched(entry) else { throw ModelError.notFetched(name: argument, path: file(entry).path) }
            return file(entry).path
        }
        // A model fetched from a catalog of one's own: the verified file in its folder.
        let folder = directory.appendingPathComponent(argument)
        if let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path),
           let name = names.sorted().first(where: { verifiedDigest(of: folder.appendingPathComponent($0)) != nil }) {
            return folder.appendingPathComponent(name).path
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

    /// Downloads `entry` from `url` (its own, or the same file name under a mirror's base URL),
    /// resuming a partial download, verifying the SHA-256, and installing the file atomically.
    /// `progress` is called with the bytes so far and the total when known.
    func fetch(_ entry: ModelEntry, from url: String, gate: InterruptGate, retries: Int = 3,
               progress: (Int64, Int64?) -> Void) throws -> URL {
        let target = file(entry)
        let partial = target.appendingPathExtension("part")
        do {
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw ModelError.unwritable(path: target.deletingLastPathComponent().path, reason: error.localizedDescription)
        }
        // One download per model at a time: a second fetch would write the same part.
        let lockPath = directory.appendingPathComponent(".\(entry.name).lock").path
        let lock = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw ModelError.unwritable(path: lockPath, reason: String(cString: strerror(errno))) }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else { throw ModelError.busy(name: entry.name, lock: lockPath) }
        if isFetched(entry) { return target }
        // A file put there by hand counts once its digest is checked.
        if FileManager.default.fileExists(atPath: target.path), (try? sha256(of: target)) == entry.sha256 {
            try record(entry.sha256, of: target)
            return target
        }
        var failures = 0, restarted = false
        while true {
            do {
                let (digest, resumed) = try download(url: url, to: partial, gate: gate, progress: progress)
                guard digest == entry.sha256 else {
                    try? FileManager.default.removeItem(at: partial)
                    // A resumed file may be wrong in its first part; one fresh download decides.
                    if resumed && !restarted { restarted = true; continue }
                    throw ModelError.digestMismatch(name: entry.name, url: url, expected: entry.sha256, actual: digest)
                }
                try install(partial, as: target, digest: digest)
                return target
            } catch let error as MediaError {
                if case .cancelled = error { throw ModelError.interrupted(name: entry.name, partial: partial.path, reason: "stopped") }
                failures += 1
                guard failures <= retries else {
                    throw ModelError.interrupted(name: entry.name, partial: partial.path, reason: error.description)
                }
                Thread.sleep(forTimeInterval: min(8, 0.5 * Double(1 << failures)))
            } catch RestartDownload.serverIgnoredRange {
                try? FileManager.default.removeItem(at: partial)
                guard !restarted else { throw ModelError.interrupted(name: entry.name, partial: partial.path, reason: "the server sent more than the file") }
                restarted = true
            }
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
