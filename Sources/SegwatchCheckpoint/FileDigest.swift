// Content digests of files, and the atomic writes caches need.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// The XXH64 of a file's bytes.
///
/// Hashing a model's gigabyte on every start would cost more than the cache it keys saves, so
/// with a `memo` folder the digest is remembered under the file's identity: device, inode, size,
/// modification and status-change times. A rewritten file changes its status-change time, which
/// no tool can set back, so a stale digest is never returned for changed bytes.
public func fileDigest(_ path: String, memo: URL? = nil) throws(CheckpointError) -> UInt64 {
    var status = stat()
    guard stat(path, &status) == 0 else { throw .unreadable(file: path, reason: String(cString: strerror(errno))) }
    guard (status.st_mode & S_IFMT) == S_IFREG else { throw .unreadable(file: path, reason: "not a regular file") }
    let identity = [UInt64(status.st_dev), UInt64(status.st_ino), UInt64(status.st_size),
                    UInt64(status.st_mtim.tv_sec), UInt64(status.st_mtim.tv_nsec),
                    UInt64(status.st_ctim.tv_sec), UInt64(status.st_ctim.tv_nsec)]
        .map { String($0) }.joined(separator: " ")
    let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
    let memoFile = memo?.appendingPathComponent(hexDigest(XXH64.hash(absolute.utf8)))
    if let memoFile, let line = try? String(contentsOf: memoFile, encoding: .utf8) {
        // "<identity> <digest>": anything else is a damaged entry, recomputed below.
        let fields = line.split(separator: " ")
        if fields.count == 8, fields.dropLast().joined(separator: " ") == identity,
           let digest = UInt64(fields[7].filter { !$0.isWhitespace }, radix: 16) {
            return digest
        }
    }
    let digest = try hashFile(path)
    if let memo, let memoFile {
        // A memo that cannot be written costs a rehash next time, nothing more.
        try? FileManager.default.createDirectory(at: memo, withIntermediateDirectories: true)
        try? writeAtomically(Data("\(identity) \(hexDigest(digest))\n".utf8), to: memoFile)
    }
    return digest
}

private func hashFile(_ path: String) throws(CheckpointError) -> UInt64 {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw .unreadable(file: path, reason: String(cString: strerror(errno))) }
    defer { close(descriptor) }
    var hasher = XXH64()
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 22, alignment: 64)
    defer { chunk.deallocate() }
    while true {
        let count = read(descriptor, chunk.baseAddress, chunk.count)
        if count < 0 {
            if errno == EINTR { continue }
            throw .unreadable(file: path, reason: String(cString: strerror(errno)))
        }
        if count == 0 { return hasher.digest() }
        hasher.update(UnsafeRawBufferPointer(rebasing: chunk[..<count]))
    }
}

/// Writes `data` to `url` so that readers see the old file or the whole new one, never a part:
/// a temporary file in the same folder, flushed to disk, then renamed over the target.
public func writeAtomically(_ data: Data, to url: URL) throws(CheckpointError) {
    let folder = url.deletingLastPathComponent()
    let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
    let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw .unwritable(file: url.path, reason: String(cString: strerror(errno))) }
    var failure: String?
    data.withUnsafeBytes { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                failure = String(cString: strerror(errno))
                return
            }
            offset += written
        }
    }
    if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
    close(descriptor)
    if failure == nil, rename(temporary.path, url.path) != 0 { failure = String(cString: strerror(errno)) }
    if let failure {
        unlink(temporary.path)
        throw .unwritable(file: url.path, reason: failure)
    }
    // The rename itself is durable once the folder is flushed; best effort.
    let directory = open(folder.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if directory >= 0 {
        fsync(directory)
        close(directory)
    }
}
