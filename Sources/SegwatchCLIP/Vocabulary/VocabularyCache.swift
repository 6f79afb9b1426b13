// Label embeddings kept on disk, so a vocabulary is encoded once per model and template set.
import Foundation
import SegwatchCheckpoint

/// A folder of embedding packs, one file per (model digest, template digest); inside, one entry
/// per label key (`car|automobile`).
///
/// A pack is rewritten whole, through a temporary file and a rename, so a reader sees an old or
/// a new pack, never half of one. Each entry carries a checksum: a damaged file keeps its entries
/// before the damage, and the labels after it are encoded again and the pack rewritten.
///
/// Layout, little-endian: `SWVOCAB\0`, u32 version, u32 dimension, u64 model digest, u64
/// template digest, u64 XXH64 of those 32 bytes; then entries: u32 key length, the key's UTF-8
/// bytes, `dimension` float32 values (unit norm), u64 XXH64 of key bytes and values.
public struct VocabularyCache: Sendable {
    public let directory: URL

    static let magic = Array("SWVOCAB\0".utf8)
    static let version: UInt32 = 1
    static let headerBytes = 40
    /// Refuse a pack larger than this (500,000 labels at D = 768) rather than read it.
    static let maximumPackBytes = 2 << 30

    public init(directory: URL) {
        self.directory = directory
    }

    /// `$SEGWATCH_CACHE`, else `$XDG_CACHE_HOME/segwatch`, else `~/.cache/segwatch`.
    public static var defaultDirectory: URL {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["SEGWATCH_CACHE"], !path.isEmpty { return URL(fileURLWithPath: path) }
        // systemd's CacheDirectory=, for the service.
        if let path = environment["CACHE_DIRECTORY"]?.split(separator: ":").first { return URL(fileURLWithPath: String(path)) }
        if let path = environment["XDG_CACHE_HOME"], !path.isEmpty {
            return URL(fileURLWithPath: path).appendingPathComponent("segwatch")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/segwatch")
    }

    /// Where model files' digests are remembered (see `fileDigest`).
    public var digestMemo: URL { directory.appendingPathComponent("digests") }

    public func packFile(model: UInt64, templates: UInt64) -> URL {
        directory.appendingPathComponent("vocabulary").appendingPathComponent("\(hexDigest(model))-\(hexDigest(templates)).swvocab")
    }

    /// What a pack holds. Reading never fails: a missing pack is empty, and a damaged one keeps
    /// what it can and says why in `damage`.
    public struct Contents: Sendable {
        public var dimension: Int?
        public var keys: [String] = []
        public var embeddings: [String: [Float]] = [:]
        public var damage: String?
    }

    public func read(model: UInt64, templates: UInt64) -> Contents {
        let url = packFile(model: model, templates: templates)
        var contents = Contents()
        guard FileManager.default.fileExists(atPath: url.path) else { return contents }
        let data: Data
        do {
            let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            guard size <= Self.maximumPackBytes else {
                contents.damage = "\(size) bytes, more than a pack may hold (\(Self.maximumPackBytes))"
                return contents
            }
            data = try Data(contentsOf: url)
        } catch {
            contents.damage = "cannot read: \(systemReason(error))"
            return contents
        }
        data.withUnsafeBytes { bytes in
            guard bytes.count >= Self.headerBytes,
                  Array(bytes[0..<8]) == Self.magic,
                  bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian == Self.version,
                  bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian == model,
                  bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian == templates,
                  bytes.loadUnaligned(fromByteOffset: 32, as: UInt64.self).littleEndian
                    == XXH64.hash(UnsafeRawBufferPointer(rebasing: bytes[0..<32]))
            else {
                contents.damage = "not a segwatch vocabulary pack of this model and template set (bad header)"
                return
            }
            let dimension = Int(bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian)
            guard (1...65536).contains(dimension) else {
                contents.damage = "bad header: dimension \(dimension)"
                return
            }
            contents.dimension = dimension
            var offset = Self.headerBytes
            while offset < bytes.count {
                guard let (key, values, next) = Self.entry(bytes, at: offset, dimension: dimension) else {
                    contents.damage = "damaged entry at byte \(offset); \(contents.keys.count) entries before it kept"
                    return
                }
                if contents.embeddings.updateValue(values, forKey: key) == nil { contents.keys.append(key) }
                offset = next
            }
        }
        return contents
    }

    /// The entry at `offset`, checked: nil when it runs past the end, fails its checksum, or
    /// holds a value that is not finite.
    private static func entry(_ bytes: UnsafeRawBufferPointer, at offset: Int, dimension: Int) -> (String, [Float], Int)? {
        guard offset + 4 <= bytes.count else { return nil }
        let keyLength = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
        let keyStart = offset + 4, valuesStart = keyStart + keyLength, end = valuesStart + 4 * dimension
        guard keyLength <= 1 << 20, end + 8 <= bytes.count else { return nil }
        let checked = UnsafeRawBufferPointer(rebasing: bytes[keyStart..<end])
        guard XXH64.hash(checked) == bytes.loadUnaligned(fromByteOffset: end, as: UInt64.self).littleEndian,
              let key = String(validating: bytes[keyStart..<valuesStart], as: UTF8.self)
        else { return nil }
        let values = (0..<dimension).map { Float(bitPattern: bytes.loadUnaligned(fromByteOffset: valuesStart + 4 * $0, as: UInt32.self).littleEndian) }
        guard values.allSatisfy(\.isFinite) else { return nil }
        return (key, values, end + 8)
    }

    /// Adds `entries` to the pack, keeping what it already holds (read again now, so labels
    /// another process added meanwhile survive), and replaces the file atomically.
    public func store(_ entries: [(key: String, embedding: [Float])], model: UInt64, templates: UInt64,
                      dimension: Int) throws(CheckpointError) {
        let url = packFile(model: model, templates: templates)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw .unwritable(file: url.deletingLastPathComponent().path, reason: systemReason(error))
        }
        let existing = read(model: model, templates: templates)
        var merged: [(String, [Float])] = existing.dimension == dimension ? existing.keys.map { ($0, existing.embeddings[$0]!) } : []
        var present = Set(merged.map(\.0))
        for (key, embedding) in entries where present.insert(key).inserted {
            precondition(embedding.count == dimension, "an embedding of \(embedding.count) values in a pack of \(dimension)")
            merged.append((key, embedding))
        }
        var data = Data(capacity: Self.headerBytes + merged.count * (4 * dimension + 40))
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        data.append(contentsOf: Self.magic)
        append(Self.version)
        append(UInt32(dimension))
        append(model)
        append(templates)
        append(XXH64.hash(data))
        for (key, embedding) in merged {
            let keyBytes = Array(key.utf8)
            append(UInt32(keyBytes.count))
            let start = data.count
            data.append(contentsOf: keyBytes)
            embedding.withUnsafeBytes { data.append(contentsOf: $0) }
            append(data[start...].withUnsafeBytes { XXH64.hash($0) })
        }
        try writeAtomically(data, to: url)
    }
}
