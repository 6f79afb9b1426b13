/// Why the store cannot do what was asked: it names the store and says what was expected.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The store cannot be opened, read or written (a full disk, a lost connection, a file that
    /// is not a store).
    case unavailable(store: String, reason: String)
    /// The store's schema is newer than this segwatch knows.
    case newerSchema(store: String, found: String, known: String)
    /// What was asked does not fit what is stored (other models, another width).
    case mismatch(store: String, reason: String)

    /// The store could not be reached or written (as opposed to what it holds not fitting).
    public var isUnavailable: Bool {
        if case .unavailable = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case let .unavailable(store, reason): return "store \(store): \(reason)"
        case let .newerSchema(store, found, known):
            return "store \(store): its schema (\(found)) is newer than this segwatch knows (up to \(known)); use a newer segwatch"
        case let .mismatch(store, reason): return "store \(store): \(reason)"
        }
    }
}
