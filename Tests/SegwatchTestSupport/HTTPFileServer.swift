import Foundation

/// A Python HTTP server with byte ranges (`range_http_server.py`) serving a folder on
/// 127.0.0.1, for tests of `http://` inputs.
public final class HTTPFileServer: @unchecked Sendable {
    public let port: Int
    private let process: Process

    /// `options` are the script's: `--cut BYTES`, `--ignore-range`, `--log FILE`.
    public init(folder: String, port: Int = freePort(), options: [String] = [], timeout: Double = 20) throws {
        self.port = port
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("range_http_server.py")
        process.arguments = [script.path, folder, String(port)] + options
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while !Self.accepts(port: port) {
            if Date() > deadline {
                stop()
                throw ProcessTimeout(command: "http.server on port \(port)", seconds: timeout)
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// The URL of `file` in the served folder.
    public func url(_ file: String) -> String { "http://127.0.0.1:\(port)/\(file)" }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
