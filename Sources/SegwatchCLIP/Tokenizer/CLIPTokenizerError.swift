/// Why a CLIP tokenizer could not be loaded; each names the file and what was expected.
public enum CLIPTokenizerError: Error, CustomStringConvertible {
    /// The file could not be read (missing, unreadable, corrupt gzip data).
    case unreadable(path: String, reason: String)
    /// The file was read but its content is not what the tokenizer expects. `line` is 1-based;
    /// 0 where the problem is not on one line.
    case malformed(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read CLIP tokenizer file \(path): \(reason)"
        case let .malformed(path, line, reason):
            return line > 0 ? "malformed CLIP tokenizer file \(path), line \(line): \(reason)"
                : "malformed CLIP tokenizer file \(path): \(reason)"
        }
    }
}
