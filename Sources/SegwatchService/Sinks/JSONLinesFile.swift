import Foundation
import Synchronization

/// A JSON lines file that is appended to, never truncated, and rotated by size or age.
///
/// A restart appends to what the last run wrote. Each line is one `write(2)` on a file opened
/// with `O_APPEND`, so a reader (or a crash) never sees a line cut by another; a file left by
/// a crash in the middle of a line gets a newline first, so every line stays parseable.
/// Rotation renames `F` to `F.1` (`F.1` to `F.2`, ...), keeps `keep` old files, and starts `F`
/// anew.
public final class JSONLinesFile: EventSink {
    public struct Rotation: Sendable, Equatable {
        /// Rotate when the file would pass this many bytes (nil: no size limit).
        public var maximumBytes: Int?
        /// Rotate when the file is this many seconds old (nil: no age limit).
        public var maximumAge: Double?
        /// Rotated files kept (`F.1` ... `F.keep`); older ones are deleted.
        public var keep: Int

        public init(maximumBytes: Int? = nil, maximumAge: Double? = nil, keep: Int = 5) {
            (self.maximumBytes, self.maximumAge, self.keep) = (maximumBytes, maximumAge, keep)
        }

        public static let never = Rotation()
    }

    public let path: String
    public let rotation: Rotation
    private struct State {
        var fd: Int32
        var bytes: Int
        var opened: Date
    }
    private let state: Mutex<State?>

    public init(path: String, rotation: Rotation = .never) throws {
        self.path = path
        self.rotation = rotation
        state = Mutex(try Self.open(path))
    }

    private static func open(_ path: String) throws -> State {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ServiceError("\(path): cannot open the JSON lines file for appending: \(String(cString: strerror(errno)))") }
        var info = stat()
        fstat(fd, &info)
        var bytes = Int(info.st_size)
        // A line cut by a crash is ended, so the next line starts on a line of its own.
        if bytes > 0 {
            let reader = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            var last: UInt8 = 0
            if reader >= 0 {
                _ = pread(reader, &last, 1, off_t(bytes - 1))
                Glibc.close(reader)
            }
            if last != UInt8(ascii: "\n") {
                var newline = UInt8(ascii: "\n")
                if Glibc.write(fd, &newline, 1) == 1 { bytes += 1 }
            }
        }
        // A file's age counts from its first event (POSIX keeps no creation time), so a daemon
        // restarted every day still rotates a daily file.
        return State(fd: fd, bytes: bytes, opened: bytes > 0 ? firstEventTime(path) ?? Date() : Date())
    }

    public func write(_ line: [UInt8]) throws {
        try state.withLock { state in
            guard var current = state else { return }
            let tooBig = rotation.maximumBytes.map { current.bytes > 0 && current.bytes + line.count > $0 } ?? false
            let tooOld = rotation.maximumAge.map { current.bytes > 0 && Date().timeIntervalSince(current.opened) >= $0 } ?? false
            if tooBig || tooOld {
                Glibc.close(current.fd)
                state = nil
                rotateFiles()
                current = try Self.open(path)
                state = current
            }
            try line.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(current.fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw ServiceError("\(path): cannot write the events: \(String(cString: strerror(errno)))")
                    }
                    offset += written
                }
            }
            state!.bytes += line.count
        }
    }

    /// `F.(keep-1)` → `F.keep`, ..., `F` → `F.1`; the oldest beyond `keep` is deleted.
    private func rotateFiles() {
        let keep = max(rotation.keep, 1)
        unlink("\(path).\(keep)")
        for n in stride(from: keep - 1, through: 1, by: -1) { rename("\(path).\(n)", "\(path).\(n + 1)") }
        rename(path, "\(path).1")
    }

    public func close() throws {
        let fd = state.withLock { state -> Int32? in
            defer { state = nil }
            return state?.fd
        }
        guard let fd else { return }
        let synced = fsync(fd) == 0 || errno == EINVAL
        Glibc.close(fd)
        if !synced { throw ServiceError("\(path): cannot flush the events to disk: \(String(cString: strerror(errno)))") }
    }
}

/// The `time` of the first line of the JSON lines file at `path`, if it has one.
func firstEventTime(_ path: String) -> Date? {
    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? handle.close() }
    guard let head = try? handle.read(upToCount: 1 << 16), let end = head.firstIndex(of: UInt8(ascii: "\n")),
          let first = try? JSONSerialization.jsonObject(with: head[..<end]) as? [String: Any],
          let time = first["time"] as? String else { return nil }
    return parseISOTime(time)
}

/// Event lines on standard output.
public final class StandardOutputSink: EventSink {
    public init() {}

    public func write(_ line: [UInt8]) throws {
        try line.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw ServiceError("stdout: cannot write the events: \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
    }

    public func close() throws {}
}
