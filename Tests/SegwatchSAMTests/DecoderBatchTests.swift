@testable import SegwatchSAM
import Testing

/// How `Sam.decode` cuts prompts into decoder batches and shares them over the threads.
@Suite struct DecoderBatchTests {
    // Guards a tracked frame's wall time: its batches are even, so that no thread decodes 8
    // prompts while the other decodes 1; every prompt is in exactly one batch, in order.
    @Test(arguments: [(1, 2), (5, 2), (8, 2), (9, 2), (16, 2), (17, 2), (23, 3), (64, 2), (1000, 2), (9, 1), (3, 4)])
    func batchesAreEvenAndCoverEveryPrompt(count: Int, items: Int) {
        let indices = Array((0..<count).map { 3 * $0 + 1 })
        let batches = evenBatches(indices, atMost: 8, items: items)
        #expect(batches.flatMap { $0 } == indices)
        let sizes = batches.map(\.count)
        #expect(sizes.allSatisfy { 1...8 ~= $0 }, "\(sizes)")
        #expect(sizes.max()! - sizes.min()! <= 1, "\(sizes)")
        // As few batches as 8 prompts a batch allow, rounded up to whole rounds of the items.
        let fewest = (count + 7) / 8
        #expect(batches.count == (fewest == 1 ? 1 : min((fewest + items - 1) / items * items, count)), "\(sizes)")
    }

    @Test func nineAndSeventeenTracksOnTwoThreads() {
        #expect(evenBatches(Array(0..<9), atMost: 8, items: 2).map(\.count) == [4, 5])
        #expect(evenBatches(Array(0..<17), atMost: 8, items: 2).map(\.count) == [4, 4, 4, 5])
    }

    // Guards the balance across batches of different prompt kinds (points, boxes): each item's
    // prompts add up alike, and every batch runs once.
    @Test func batchesAreSharedOutByTheirPrompts() {
        let sizes = [5, 4, 8, 8, 3, 7]
        let shares = sharedOut(sizes, items: 2)
        #expect(shares.flatMap { $0 }.sorted() == Array(sizes.indices))
        let loads = shares.map { $0.reduce(0) { $0 + sizes[$1] } }
        #expect(loads.sorted() == [17, 18], "\(shares)")
        #expect(sharedOut([6], items: 2) == [[0]])
        #expect(sharedOut([4, 4, 4], items: 1) == [[0, 1, 2]])
        #expect(sharedOut([2, 1], items: 4) == [[0], [1]])
        #expect(sharedOut([], items: 2).isEmpty)
    }
}
