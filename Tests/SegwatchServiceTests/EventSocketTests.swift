import Foundation
@testable import SegwatchService
import SegwatchTestSupport
import Testing

/// The events socket on its own: whole lines to every reader, a stalled reader dropped
/// without stalling the publisher, a file that is not a socket or a live socket refused, a
/// dead process's socket replaced, and mode 0660 whatever the umask.
struct EventSocketTests {
    @Test func readersGetWholeLinesAndAStalledOneIsDropped() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("e.sock")
        let socket = try EventSocket(path: path)
        let stalled = try #require(connectUnix(path)), reader = try #require(connectUnix(path))
        defer { close(stalled); close(reader) }
        // What the reader gets, read on its own thread as a real reader would.
        let received = DataBox()
        let done = DispatchSemaphore(value: 0)
        Thread {
            var chunk = [UInt8](repeating: 0, count: 65536)
            while case let count = read(reader, &chunk, chunk.count), count > 0 { received.data.append(contentsOf: chunk[..<count]) }
            done.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.3)  // both accepted
        let line = Array((String(repeating: "x", count: 1000) + "\n").utf8)
        let lines = 3 * EventSocket.maximumBacklog / line.count
        let start = Date()
        for _ in 0..<lines {
            socket.publish(line)
            Thread.sleep(forTimeInterval: 0.00002)
        }
        // Publishing 12 MB never waited on the stalled reader.
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(socket.droppedReaders == 1)
        socket.close()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(received.data.count == lines * line.count)
        #expect(received.data.split(separator: UInt8(ascii: "\n")).allSatisfy { $0.count == 1000 })
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aFileThatIsNotASocketIsRefused() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("taken")
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8)))
        #expect { try EventSocket(path: path) } throws: { "\($0)".contains(path) && "\($0)".contains("not a socket") }
        #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))
    }

    // A socket that a live process listens on is left alone; one left by a process that died
    // (bound, never unlinked) is replaced, so a restart after a crash is not blocked.
    @Test func aLiveSocketIsRefusedAndAStaleOneReplaced() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("e.sock")
        let live = try EventSocket(path: path)
        #expect { try EventSocket(path: path) } throws: { "\($0)".contains(path) && "\($0)".contains("another process") }
        live.close()

        // What a killed process leaves: the socket file, with nobody listening.
        var address = try #require(unixSocketAddress(path))
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        close(fd)
        #expect(FileManager.default.fileExists(atPath: path) && connectUnix(path) == nil)
        let replaced = try EventSocket(path: path)
        let reader = try #require(connectUnix(path))
        close(reader)
        replaced.close()
    }

    // With umask 000 the file would be 0777 and any local user could read the events.
    @Test func theSocketIsOwnerAndGroupOnlyWhateverTheUmask() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for mask: mode_t in [0o000, 0o077, 0o022] {
            let path = folder.path("m\(mask).sock")
            let previous = umask(mask)
            let socket = try EventSocket(path: path)
            umask(previous)
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o660, "umask \(String(mask, radix: 8)): mode \(String(info.st_mode & 0o777, radix: 8))")
            socket.close()
        }
    }
}
