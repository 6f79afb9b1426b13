import Foundation

/// Paths to the shared fixtures, read in place from `../shared/fixtures` beside the checkout.
public enum Fixtures {
    /// The package's root folder.
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    /// `../shared/fixtures`, or `SEGWATCH_FIXTURES` when set.
    public static let root: URL = {
        if let override = ProcessInfo.processInfo.environment["SEGWATCH_FIXTURES"] {
            return URL(fileURLWithPath: override)
        }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }()

    /// A file under `fixtures/media`.
    public static func media(_ name: String) -> String {
        root.appendingPathComponent("media").appendingPathComponent(name).path
    }

    /// `../shared/tools`.
    public static var tools: URL {
        root.deletingLastPathComponent().appendingPathComponent("tools")
    }
}

/// A fresh temporary folder, removed by `remove()`.
public struct TemporaryFolder: Sendable {
    public let url: URL

    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    public func remove() { try? FileManager.default.removeItem(at: url) }
}
