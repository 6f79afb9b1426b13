/// What can go wrong loading or running CLIP, naming the file or input.
public enum CLIPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file or folder that cannot be read.
    case unreadable(path: String, reason: String)
    /// A readable file that is not what a CLIP folder holds.
    case unrecognized(path: String, reason: String)
    /// An input the model cannot take (an image size that is not a multiple of the patch).
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read: \(reason)"
        case let .unrecognized(path, reason):
            return "\(path) is not a CLIP model (a transformers or open_clip folder, or OpenAI's .pt file): \(reason)"
        case let .invalidInput(reason): return reason
        }
    }
}
