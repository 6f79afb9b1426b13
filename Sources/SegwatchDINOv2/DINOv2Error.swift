/// What can go wrong loading or running DINOv2, naming the file or input.
public enum DINOv2Error: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file or folder that cannot be read.
    case unreadable(path: String, reason: String)
    /// A readable file that is not what a DINOv2 folder holds.
    case unrecognized(path: String, reason: String)
    /// An input the model cannot take (a size that is not a multiple of the patch, a level
    /// the model does not have).
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read: \(reason)"
        case let .unrecognized(path, reason):
            return "\(path) is not a DINOv2 model (a transformers folder: config.json, model.safetensors or pytorch_model.bin): \(reason)"
        case let .invalidInput(reason): return reason
        }
    }
}
