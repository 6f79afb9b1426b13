import Foundation
import SegwatchPipeline
import SegwatchTestSupport
import Synchronization
import Testing

@Suite struct BoundedChannelTests {
    // Guards order and completeness between threads: every element, in order, then nil.
    @Test func everyElementArrivesInOrder() {
        let channel = BoundedChannel<Int>(capacity: 3)
        let producer = StageThread(name: "producer") {
            for i in 0..<10_000 { channel.send(i) }
            channel.close()
        }
        var received: [Int] = []
        while let value = channel.receive() { received.append(value) }
        producer.wait()
        #expect(received == Array(0..<10_000))
    }

    // Guards back-pressure: a producer with nobody reading stops at the capacity, and goes on
    // as soon as an element is taken.
    @Test func fullChannelHoldsTheProducer() throws {
        let channel = BoundedChannel<Int>(capacity: 2)
        let sent = Atomic<Int>(0)
        let producer = StageThread(name: "producer") {
            for i in 0..<5 {
                guard channel.send(i) else { return }
                sent.add(1, ordering: .relaxed)
            }
        }
        Thread.sleep(forTimeInterval: 0.3)
        #expect(sent.load(ordering: .relaxed) == 2)
        #expect(channel.receive() == 0)
        #expect(eventually(5) { sent.load(ordering: .relaxed) == 3 })
        Thread.sleep(forTimeInterval: 0.1)
        #expect(sent.load(ordering: .relaxed) == 3)
        // A consumer that stops early releases the blocked producer.
        channel.cancel()
        producer.wait()
        #expect(sent.load(ordering: .relaxed) == 3)
        #expect(channel.receive() == nil)
    }

    // Guards the end: what was queued before close is still received; nothing after.
    @Test func closeKeepsWhatIsQueued() {
        let channel = BoundedChannel<String>(capacity: 4)
        #expect(channel.send("a") && channel.send("b"))
        channel.close()
        #expect(!channel.send("c"))
        #expect(channel.receive() == "a")
        #expect(channel.receive() == "b")
        #expect(channel.receive() == nil)
    }

    final class Counter: Sendable { let value = Atomic<Int>(0) }
    final class Tracked: Sendable {
        let freed: Counter
        init(_ freed: Counter) { self.freed = freed }
        deinit { freed.value.add(1, ordering: .relaxed) }
    }

    // Guards memory: a received element is the consumer's alone, so it is freed when the
    // consumer lets it go, however long the channel lives on (it held the last 64 frames once).
    @Test func aReceivedElementIsNotKept() {
        let freed = Counter()
        let channel = BoundedChannel<Tracked>(capacity: 2)
        for round in 1...100 {
            channel.send(Tracked(freed))
            channel.send(Tracked(freed))
            _ = channel.receive()
            #expect(freed.value.load(ordering: .relaxed) == 2 * round - 1)
            _ = channel.receive()
            #expect(freed.value.load(ordering: .relaxed) == 2 * round)
        }
        channel.send(Tracked(freed))
        channel.cancel()
        #expect(freed.value.load(ordering: .relaxed) == 201, "a cancelled channel drops what it held")
    }
}
