import Foundation
import Synchronization

/// systemd's notification protocol (`sd_notify(3)`), spoken directly: one datagram per message
/// to the Unix socket in `$NOTIFY_SOCKET`, so no libsystemd is needed. Outside systemd (no
/// `$NOTIFY_SOCKET`) every call does nothing.
///
/// `Type=notify` units wait for `READY=1`; `STATUS=` shows in `systemctl status`; `WATCHDOG=1`
/// must come every `WatchdogSec=` (systemd passes it as `$WATCHDOG_USEC`) or the service is
/// restarted; `STOPPING=1` announces an orderly stop.
public final class SystemdNotifier: Sendable {
    private let address: sockaddr_un?
    private let length: socklen_t
    private let fd: Int32
    /// How often systemd expects `WATCHDOG=1`, from `$WATCHDOG_USEC` (nil: no watchdog).
    public let watchdogInterval: Double?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        var usec = environment["WATCHDOG_USEC"].flatMap { Double($0) }.map { $0 / 1e6 }
        // WATCHDOG_PID names the process the watchdog is for; another process's is not ours.
        if let pid = environment["WATCHDOG_PID"].flatMap(Int32.init), pid != getpid() { usec = nil }
        watchdogInterval = usec.flatMap { $0 > 0 ? $0 : nil }
        guard var path = environment["NOTIFY_SOCKET"], !path.isEmpty, path.utf8.count <= unixSocketPathLimit else {
            (address, length, fd) = (nil, 0, -1)
            return
        }
        // `@name` is an abstract socket: a name with a leading zero byte, not a file.
        let abstract = path.hasPrefix("@")
        if abstract { path.removeFirst() }
        var raw = sockaddr_un()
        raw.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &raw.sun_path) { sun in
            for (i, byte) in bytes.enumerated() { sun[i + (abstract ? 1 : 0)] = byte }
        }
        address = raw
        length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 1 : 0))
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Whether segwatch runs under a systemd that listens.
    public var isActive: Bool { address != nil && fd >= 0 }

    /// Sends `message` (`KEY=value` lines); false when it could not be sent.
    @discardableResult
    public func send(_ message: String) -> Bool {
        guard var address, fd >= 0 else { return false }
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL), $0, length) }
        }
        return sent == bytes.count
    }

    public func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    public func status(_ status: String) { send("STATUS=\(status)") }
    public func watchdog() { send("WATCHDOG=1") }
    public func stopping(status: String) { send("STOPPING=1\nSTATUS=\(status)") }
}
