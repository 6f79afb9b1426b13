import Foundation

/// The result of a finished child process.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: Data
    public var stderr: Data
    public var output: String { String(decoding: stdout, as: UTF8.self) }
    public var errorOutput: String { String(decoding: stderr, as: UTF8.self) }
}

public struct ProcessTimeout: Error, CustomStringConvertible {
    public var command: String
    public var seconds: Double
    public var description: String { "\(command) did not finish within \(seconds) s" }
}

/// Runs `executable` with `arguments`, killing it after `timeout` seconds.
public func runProcess(_ executable: String, _ arguments: [String], timeout: Double = 120,
                       environment: [String: String]? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Drain both pipes concurrently so a chatty child cannot block on a full pipe.
    let outData = DataBox(), errData = DataBox()
    let group = DispatchGroup()
    for (pipe, box) in [(out, outData), (err, errData)] {
        group.enter()
        DispatchQueue.global().async {
            box.data = pipe.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    if process.isRunning {
        process.terminate()
        Thread.sleep(forTimeInterval: 0.5)
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        throw ProcessTimeout(command: ([executable] + arguments).joined(separator: " "), seconds: timeout)
    }
    process.waitUntilExit()
    group.wait()
    return ProcessResult(status: process.terminationStatus, stdout: outData.data, stderr: errData.data)
}

/// Bytes filled by one thread and read by another once it is done.
public final class DataBox: @unchecked Sendable {
    public var data = Data()
    public init() {}
}

/// Waits until `condition` holds, checking every `interval` seconds for at most `timeout`;
/// returns whether it holds.
public func eventually(_ timeout: Double, every interval: Double = 0.05, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() && Date() < deadline { Thread.sleep(forTimeInterval: interval) }
    return condition()
}

/// Absolute path of a program on PATH, or nil.
public func which(_ program: String) -> String? {
    for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let candidate = "\(folder)/\(program)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// Frames, width, height and duration of the first video stream as ffprobe counts them.
public func ffprobeVideo(_ path: String) throws -> (frames: Int, width: Int, height: Int, duration: Double?) {
    let result = try runProcess(which("ffprobe") ?? "/usr/bin/ffprobe", [
        "-v", "error", "-select_streams", "v:0", "-count_frames",
        "-show_entries", "stream=nb_read_frames,width,height,duration", "-of", "json", path], timeout: 60)
    let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
    guard let stream = (object?["streams"] as? [[String: Any]])?.first else {
        throw ProcessTimeout(command: "ffprobe \(path): no video stream; \(result.errorOutput)", seconds: 0)
    }
    return (Int(stream["nb_read_frames"] as? String ?? "") ?? -1,
            stream["width"] as? Int ?? -1, stream["height"] as? Int ?? -1,
            (stream["duration"] as? String).flatMap(Double.init))
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Resident memory of this process in bytes, from /proc/self/statm.
public func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// glibc's `malloc_trim(0)`: returns memory malloc has freed but kept to the system, so
/// resident size then counts memory in use. (Not exported by the Glibc module; found at run
/// time.)
public func releaseFreedMemory() {
    typealias Trim = @convention(c) (Int) -> Int32
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_trim") else { return }
    _ = unsafeBitCast(symbol, to: Trim.self)(0)
}

/// A child process left running while a test goes on, its output going to files.
public final class BackgroundProcess {
    public let process = Process()
    private let stdoutURL: URL, stderrURL: URL

    public init(_ executable: String, _ arguments: [String], stdout: String, stderr: String,
                environment: [String: String]? = nil) throws {
        (stdoutURL, stderrURL) = (URL(fileURLWithPath: stdout), URL(fileURLWithPath: stderr))
        FileManager.default.createFile(atPath: stdout, contents: nil)
        FileManager.default.createFile(atPath: stderr, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Waits up to `timeout` seconds for the exit, then kills it; nil when it had to be killed.
    @discardableResult
    public func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    public var output: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    public var errorOutput: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }
}
