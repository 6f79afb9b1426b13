import Foundation

/// The shared loopback RTSP server (`../shared/tools/rtsp_server.py`) as a child process.
public final class RTSPServer: @unchecked Sendable {
    public let port: Int
    public let url: String
    private let process: Process

    /// Whether Debian's Python has the GStreamer RTSP bindings the server needs.
    public static var isAvailable: Bool {
        guard FileManager.default.fileExists(atPath: "/usr/bin/python3") else { return false }
        let probe = try? runProcess("/usr/bin/python3", ["-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"], timeout: 30)
        return probe?.status == 0
    }

    /// Starts serving `file` in a loop on `port`, and returns once it listens.
    public init(file: String, port: Int, silent: Bool = false, timeout: Double = 20) throws {
        self.port = port
        url = "rtsp://127.0.0.1:\(port)/stream"
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [Fixtures.tools.appendingPathComponent("rtsp_server.py").path, file,
                             "--port", String(port)] + (silent ? ["--silent"] : [])
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let ready = DispatchSemaphore(value: 0)
        let handle = out.fileHandleForReading
        DispatchQueue.global().async {
            var buffer = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                if String(decoding: buffer, as: UTF8.self).contains("ready ") { ready.signal(); break }
            }
        }
        if ready.wait(timeout: .now() + timeout) == .timedOut {
            stop()
            throw ProcessTimeout(command: "rtsp_server.py on port \(port)", seconds: timeout)
        }
    }

    /// Kills the server at once, as a crash or a network cut would.
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}
