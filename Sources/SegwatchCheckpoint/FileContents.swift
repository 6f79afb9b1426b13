#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SegwatchTensor

/// Why a file could not be read, in the system's words (`strerror`).
public struct FileReadFailure: Error, Sendable {
    public let reason: String
}

/// The bytes of the file at `path`.
public func fileContents(_ path: String) throws(FileReadFailure) -> Data {
    var info = stat()
    if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { throw FileReadFailure(reason: "it is a folder, not a file") }
    let file: MappedFile
    do { file = try MappedFile(path: path) } catch let MappedFile.Failure.open(_, code), let MappedFile.Failure.map(_, code) {
        throw FileReadFailure(reason: String(cString: strerror(code)))
    } catch {
        throw FileReadFailure(reason: "\(error)")
    }
    guard let bytes = file.bytes else { return Data() }
    return Data(bytes: bytes, count: file.count)
}

/// A file operation's error in the system's words: `strerror` of the POSIX error beneath a
/// Foundation error ("No such file or directory"), else the error as it describes itself.
/// (`localizedDescription` is Foundation's, which segwatch-gpu-bench does not link.)
public func systemReason(_ error: any Error) -> String {
    if let error = error as? CocoaError, let posix = error.underlying as? POSIXError {
        return String(cString: strerror(posix.code.rawValue))
    }
    if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
    return "\(error)"
}
