/// What can go wrong labeling segments, naming the input.
public enum PipelineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Inputs that do not fit together: sizes, dimensions.
    case mismatch(String)
    /// A file that cannot be used, and why.
    case unusable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .mismatch(reason): return reason
        case let .unusable(path, reason): return "\(path): \(reason)"
        }
    }
}
