import Foundation
import SegwatchCheckpoint
import SegwatchPipeline
import Synchronization

/// A camera's track ids, never repeated across restarts: the counter lives in a file of the
/// state directory (`tracks/NAME.next`).
///
/// Ids are reserved in blocks: the file says where the next block starts, and is moved on
/// (written to a temporary file, synced, renamed) before any id of the block is handed out.
/// A crash loses the rest of its block, never repeats an id, and the file is written once per
/// `block` tracks, not once per track.
public final class PersistentTrackIDs: TrackIDSource {
    public let file: URL
    private let block: Int
    private let range = Mutex<(next: Int, end: Int)>((0, 0))

    /// Reads the counter (1 if there is none yet) and reserves the first block.
    public init(stateDirectory: URL, camera: String, block: Int = 1000) throws {
        let folder = stateDirectory.appendingPathComponent("tracks", isDirectory: true)
        file = folder.appendingPathComponent(Self.fileName(camera) + ".next")
        self.block = max(block, 1)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw ServiceError("\(folder.path): cannot create the folder of track counters: \(error.localizedDescription)")
        }
        let start = try Self.read(file)
        try reserve(from: start)
    }

    public func next() -> Int {
        range.withLock { range in
            if range.next >= range.end {
                // Storage failing mid-run: ids carry on from memory rather than stop the analysis;
                // they repeat only if the process also dies before the file can be written again.
                if (try? reserveLocked(from: range.end, &range)) == nil { range.end = range.next + block }
            }
            defer { range.next += 1 }
            return range.next
        }
    }

    private func reserve(from start: Int) throws {
        try range.withLock { try reserveLocked(from: start, &$0) }
    }

    private func reserveLocked(from start: Int, _ range: inout (next: Int, end: Int)) throws {
        let end = start + block
        let temporary = file.appendingPathExtension("tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ServiceError("\(temporary.path): cannot write the track counter: \(String(cString: strerror(errno)))") }
        let text = Array("\(end)\n".utf8)
        let written = write(fd, text, text.count)
        let synced = fsync(fd) == 0
        close(fd)
        guard written == text.count, synced, rename(temporary.path, file.path) == 0 else {
            throw ServiceError("\(file.path): cannot write the track counter: \(String(cString: strerror(errno)))")
        }
        range = (start, end)
    }

    /// Where the counter file says the next block starts; 1 without a file.
    private static func read(_ file: URL) throws -> Int {
        guard let data = FileManager.default.contents(atPath: file.path) else { return 1 }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let value = Int(text), value >= 1, value < 1 << 52 else {
            throw ServiceError("\(file.path): a track counter holds one positive integer, not \(quoted(text)); remove the file to count from the highest id in your records")
        }
        return value
    }

    /// A camera name as a file name: letters, digits, `-`, `_` and `.` kept, the rest `_`,
    /// with a digest of the name when anything was replaced (so `a/b` and `a_b` differ).
    static func fileName(_ camera: String) -> String {
        // A leading dot is replaced too: no hidden files, no `.` or `..`.
        let kept = String(camera.unicodeScalars.enumerated().map { index, scalar -> Character in
            let allowed = CharacterSet.alphanumerics.contains(scalar) || "-_".unicodeScalars.contains(scalar) || (scalar == "." && index > 0)
            return scalar.isASCII && allowed ? Character(scalar) : "_"
        })
        guard kept != camera || camera.isEmpty else { return kept }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: stable across runs, unlike Hasher
        for byte in camera.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(kept.prefix(64)) + "-" + String(hash, radix: 16)
    }
}

/// Track ids seeded from the clock, where no state directory can be written: the wall time in
/// milliseconds at the start, then one by one, so a restart starts past every id of the last
/// run unless that run made more than a thousand tracks a second.
public final class ClockSeededTrackIDs: TrackIDSource {
    private let counter: Mutex<Int>

    public init(now: Date = Date()) {
        counter = Mutex(Int(now.timeIntervalSince1970 * 1000))
    }

    public func next() -> Int {
        counter.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}
