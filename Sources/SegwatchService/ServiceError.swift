/// An error of the service layer about the user's setup: an output that cannot be written, a
/// socket in use, a configuration that does not fit. Its description names the file or setting
/// and what was expected.
public struct ServiceError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `text` as an error message quotes it: at most `limit` characters, with the length of what
/// was cut, so that a 100 KB label does not give 100 KB of stderr.
public func quoted(_ text: some StringProtocol, limit: Int = 80) -> String {
    guard text.count > limit else { return "'\(text)'" }
    return "'\(text.prefix(limit))…' (\(text.count) characters)"
}
