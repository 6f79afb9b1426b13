import Foundation
import SegwatchTestSupport
import Synchronization
import Testing
@testable import SegwatchStore

@Suite struct EventFeedTests {
    // A line longer than a notification goes in parts cut between characters (multibyte ones
    // included); the parts of two senders interleaved, each line comes back whole; a part out of
    // place drops its line, and another program's payload is ignored.
    @Test func linesSplitAndJoin() {
        let long = "{\"segments\":\"" + String(repeating: "é猫a", count: 4000) + "\"}"
        let short = "{\"type\":\"track\"}"
        let a = EventFeed.payloads(long, sender: "a", sequence: 1), b = EventFeed.payloads(long + long, sender: "b", sequence: 7)
        let fewest = (long.utf8.count + EventFeed.partBytes - 1) / EventFeed.partBytes
        #expect(a.count >= fewest && a.count <= fewest + 1 && b.count >= 2 * fewest - 1 && (a + b).allSatisfy { $0.utf8.count < 8000 })
        #expect(EventFeed.payloads(short, sender: "c", sequence: 2) == ["c 2 1 1 \(short)"])
        var assembler = EventFeed.Assembler()
        var joined: [String] = []
        for i in 0..<max(a.count, b.count) {
            for parts in [a, b] where i < parts.count { if let line = assembler.add(parts[i]) { joined.append(line) } }
            if i == 1, let line = assembler.add("c 2 1 1 \(short)") { joined.append(line) }
        }
        #expect(joined == [short, long, long + long])
        #expect(assembler.add("hello") == nil && assembler.add(a[1]) == nil && assembler.add(a[2]) == nil)
        #expect(assembler.add(a[0]) == nil && assembler.add(a[2]) == nil && assembler.add(a[1]) == nil)
    }

    // Published through a store and followed by a listener: every line, in order.
    @Test func publishedLinesAreFollowed() async throws {
        let test = try TestStore(.postgres)
        let store = try #require(try test.open() as? PostgresStore)
        let lines = (0..<20).map { "{\"n\":\($0),\"pad\":\"" + String(repeating: "x", count: $0 * 1000) + "\"}" }
        let received = Mutex<[String]>([]), listening = Mutex(false)
        let follower = Task {
            try await EventFeed.follow(url: test.location, line: { line in received.withLock { $0.append(line) } },
                                       state: { state in if state.hasPrefix("listening") { listening.withLock { $0 = true } } })
        }
        #expect(await waitFor(10) { listening.withLock { $0 } })
        for (i, line) in lines.enumerated() { try store.notify(EventFeed.channel, payloads: EventFeed.payloads(line, sender: "s", sequence: i)) }
        #expect(await waitFor(10) { received.withLock { $0.count } == lines.count })
        follower.cancel()
        let got = received.withLock { $0 }
        #expect(got == lines, "\(got.count) lines of \(got.map(\.utf8.count)) bytes")
    }

    /// Whether `condition` holds within `seconds`, looked at every 50 ms without holding a thread.
    private func waitFor(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }
}
