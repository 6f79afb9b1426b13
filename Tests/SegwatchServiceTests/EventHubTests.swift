import Foundation
@testable import SegwatchService
import Testing

/// The HTTP API's event hub: numbered lines kept for `?since=`, subscribers in order, a
/// subscriber that falls behind disconnected instead of holding the cameras up.
struct EventHubTests {
    private func line(_ n: Int) -> [UInt8] { Array("{\"n\":\(n)}\n".utf8) }

    @Test func keptLinesAreNumberedFromOne() {
        let hub = EventHub()
        for n in 1...(EventHub.kept + 5) { hub.write(line(n)) }
        let all = hub.lines(since: 0)
        #expect(all.next == EventHub.kept + 6 && all.lines.count == EventHub.kept && all.lines.first == line(6))
        let recent = hub.lines(since: EventHub.kept + 3)
        #expect(recent.lines == [line(EventHub.kept + 4), line(EventHub.kept + 5)])
        #expect(hub.lines(since: EventHub.kept + 5).lines.isEmpty)
    }

    @Test func subscribersGetEveryLineInOrderUntilTheHubCloses() async {
        let hub = EventHub()
        let stream = hub.subscribe()
        for n in 1...100 { hub.write(line(n)) }
        hub.close()
        var numbers: [Int] = []
        for await (number, text) in stream {
            numbers.append(number)
            #expect(text == line(number))
        }
        #expect(numbers == Array(1...100) && hub.subscriberCount == 0)
    }

    @Test func aSubscriberThatFallsBehindIsDisconnected() async {
        let hub = EventHub()
        let slow = hub.subscribe()
        for n in 1...(EventHub.backlog + 10) { hub.write(line(n)) }
        #expect(hub.subscriberCount == 0)
        var received = 0
        for await _ in slow { received += 1 }
        #expect(received == EventHub.backlog)
    }
}
