import SegwatchTensor
import SegwatchTestSupport
import Testing

@Suite(.twoThreads) struct WindowsTests {
    @Test func partitionPadsLikeSAM() throws {
        let x = try References.tensor("windows.x")
        let (windows, padded) = windowPartition(x, size: 3)
        #expect(padded == (6, 9))
        try expectMatches(windows, "windows.windows", atol: 0)
        let back = windowUnpartition(windows, size: 3, padded: padded, original: (5, 7))
        #expect(back.shape == x.shape && back.toArray() == x.toArray())
    }

    @Test func exactMultipleNeedsNoPadding() {
        let x = Tensor(shape: [1, 4, 4, 2], values: (0..<32).map(Float.init))
        let (windows, padded) = windowPartition(x, size: 2)
        #expect(padded == (4, 4) && windows.shape == [4, 2, 2, 2])
        // The second window is the top-right 2x2 block: pixels (0,2),(0,3),(1,2),(1,3).
        #expect(Array(windows.toArray()[8..<16]) == [4, 5, 6, 7, 12, 13, 14, 15])
    }
}
