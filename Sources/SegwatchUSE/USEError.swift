/// What can go wrong with a USE head, its files and its training data, naming the file.
public enum USEError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file that cannot be read or written.
    case unreadable(path: String, reason: String)
    /// A readable file that is not what it should be (a head of other shapes, other encoders).
    case unusable(path: String, reason: String)
    /// Inputs that do not fit the head.
    case mismatch(String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read: \(reason)"
        case let .unusable(path, reason): return "\(path): \(reason)"
        case let .mismatch(reason): return reason
        }
    }
}
