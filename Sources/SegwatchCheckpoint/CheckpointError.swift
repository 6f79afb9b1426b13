/// Everything that can go wrong reading a checkpoint. Each case names the file and, where
/// there is one, the tensor, with what was expected and what was found.
public enum CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file cannot be opened or mapped.
    case unreadable(file: String, reason: String)
    /// The file cannot be written.
    case unwritable(file: String, reason: String)
    /// The file is not what it claims to be: wrong magic, bad header, truncated, out-of-range offsets.
    case malformed(file: String, reason: String)
    /// The pickle names something outside the allow-list; nothing was called.
    case forbiddenGlobal(file: String, name: String)
    case missingTensor(file: String, key: String)
    case unexpectedTensors(file: String, keys: [String])
    case shapeMismatch(file: String, key: String, expected: [Int], actual: [Int])
    case dtypeMismatch(file: String, key: String, expected: String, actual: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "cannot read checkpoint \(file): \(reason)"
        case let .unwritable(file, reason):
            return "cannot write \(file): \(reason)"
        case let .malformed(file, reason):
            return "\(file) is not a valid checkpoint: \(reason)"
        case let .forbiddenGlobal(file, name):
            return "\(file): the pickle refers to \(quoted(name)), which is not an allowed tensor-building name; refusing to load it"
        case let .missingTensor(file, key):
            return "\(file): tensor \(quoted(key)) is missing"
        case let .unexpectedTensors(file, keys):
            let shown = keys.prefix(5).joined(separator: ", ") + (keys.count > 5 ? ", … (\(keys.count) in all)" : "")
            return "\(file): unexpected tensors \(shown)"
        case let .shapeMismatch(file, key, expected, actual):
            return "\(file): tensor \(quoted(key)) has shape \(actual), expected \(expected)"
        case let .dtypeMismatch(file, key, expected, actual):
            return "\(file): tensor \(quoted(key)) has dtype \(actual), expected \(expected)"
        }
    }
}
