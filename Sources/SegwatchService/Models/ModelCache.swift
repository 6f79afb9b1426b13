import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchMedia

/// The models folder of the cache: `<cache>/models/<name>/<file>` for a model published as
/// one file, `<cache>/models/<name>/<source>/<file>` for one published as a folder; `<file>.part`
/// while a download is under way, `<file>.sha256` once it is verified; `.<name>.lock` held by
/// the one process fetching a model; `pins.json` the digests recorded on first use.
public struct ModelCache {
    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    /// `models` in segwatch's cache folder (`$SEGWATCH_CACHE`, else `$XDG_CACHE_HOME/segwatch`,
    /// else `~/.cache/segwatch`).
    public static var standard: ModelCache { ModelCache(directory: VocabularyCache.defaultDirectory.appendingPathComponent("models")) }

    /// What the loaders open: the source's file, or its folder.
    public func location(_ entry: ModelEntry, _ source: ModelSource) -> URL {
        let folder = directory.appendingPathComponent(entry.name)
        return source.isFolder ? folder.appendingPathComponent(source.name) : folder.appendingPathComponent(source.files[0].name)
    }

    public func path(_ file: ModelFile, of source: ModelSource, _ entry: ModelEntry) -> URL {
        source.isFolder ? location(entry, source).appendingPathComponent(file.name) : location(entry, source)
    }

    /// The digest a file must have: the published one, else the one pinned at its first fetch.
    public func expectedDigest(_ file: ModelFile, of source: ModelSource, _ entry: ModelEntry) -> String? {
        file.sha256 ?? pins()[Self.pinKey(file, source, entry)]
    }

    /// The first source of `entry` whose files are all in the cache, verified.
    public func fetchedSource(_ entry: ModelEntry) -> ModelSource? {
        entry.sources.first { source in
            source.files.allSatisfy { file in
                expectedDigest(file, of: source, entry).map { verifiedDigest(of: path(file, of: source, entry)) == $0 } ?? false
            }
        }
    }

    public func isFetched(_ entry: ModelEntry) -> Bool { fetchedSource(entry) != nil }

    /// A `--sam` or `--clip` argument as a path: a model name's file or folder in the cache;
    /// anything else as it is, for the loader to open or to report missing in its own words.
    public func resolve(_ argument: String, kind: ModelEntry.Kind) throws -> String {
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
    public func verifiedDigest(of file: URL) -> String? {
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
    public func fetch(_ entry: ModelEntry, from sources: [ModelSource], trustOnFirstUse: Bool, gate: InterruptGate, retries: Int = 3,
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
        // A source whose files were all put in place by hand comes first: each file is checked
        // and taken (`fetchFile`) before anything is downloaded.
        let placed = sources.filter { source in source.files.allSatisfy { FileManager.default.fileExists(atPath: path($0, of: source, entry).path) } }
        let ordered = placed + sources.filter { source in !placed.contains(source) }

        var failures: [(source: String, error: ModelError)] = []
        for source in ordered {
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
