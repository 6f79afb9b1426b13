/// An error of the service layer about the user's setup: an output that cannot be written, a
/// socket in use, a configuration that does not fit. Its description names the file or setting
/// and what was expected.
public struct ServiceError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
