import Foundation

public enum ModelError: Error, CustomStringConvertible {
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

    public var description: String {
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
