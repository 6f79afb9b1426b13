import Foundation
@testable import SegwatchService
import SegwatchTestSupport
import Testing

/// The sd_notify datagrams, received by a socket standing in for systemd.
struct SystemdNotifierTests {
    /// A bound datagram socket at `path` (`@name`: abstract) and a reader of one message.
    private func listener(_ path: String) throws -> (fd: Int32, receive: () -> String?) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let abstract = path.hasPrefix("@")
        let bytes = Array((abstract ? String(path.dropFirst()) : path).utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { sun in
            for (i, byte) in bytes.enumerated() { sun[i + (abstract ? 1 : 0)] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 1 : 0))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        #expect(bound == 0, "bind \(path): \(String(cString: strerror(errno)))")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (fd, {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count < 0 ? nil : String(decoding: buffer[..<count], as: UTF8.self)
        })
    }

    @Test(arguments: ["file", "abstract"])
    func messagesReachTheNotifySocket(kind: String) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = kind == "file" ? folder.path("notify") : "@segwatch-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let (fd, receive) = try listener(path)
        defer { close(fd) }
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2500000"])
        #expect(notifier.isActive && notifier.watchdogInterval == 2.5)
        notifier.ready(status: "3 cameras")
        #expect(receive() == "READY=1\nSTATUS=3 cameras")
        notifier.watchdog()
        #expect(receive() == "WATCHDOG=1")
        notifier.stopping(status: "finishing the outputs")
        #expect(receive() == "STOPPING=1\nSTATUS=finishing the outputs")
    }

    @Test func outsideSystemdNothingIsSent() {
        let notifier = SystemdNotifier(environment: [:])
        #expect(!notifier.isActive && notifier.watchdogInterval == nil && !notifier.send("READY=1"))
        // A watchdog meant for another process is not this one's.
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"]).watchdogInterval == nil || getpid() == 1)
    }
}
