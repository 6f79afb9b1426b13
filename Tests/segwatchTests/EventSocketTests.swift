import Foundation
@testable import segwatch
import SegwatchTestSupport
import Testing

/// The events socket on its own: whole lines to every reader, a stalled reader dropped
/// without stalling the publisher, a path that exists refused.
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

    @Test func aPathThatExistsIsRefused() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("taken")
        FileManager.default.createFile(atPath: path, contents: Data())
        #expect { try EventSocket(path: path) } throws: { "\($0)".contains(path) && "\($0)".contains("exists") }
    }
}
