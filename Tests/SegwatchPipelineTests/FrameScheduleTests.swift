import SegwatchPipeline
import Testing

struct FrameScheduleTests {
    private func selected(fps: Double, _ times: [Double]) -> [Int] {
        var schedule = FrameSchedule(fps: fps)
        return times.indices.filter { schedule.selects(pts: times[$0]) }
    }

    @Test func everyFifthFrameOf25AtFive() {
        let times = (0..<250).map { Double($0) / 25 }
        #expect(selected(fps: 5, times) == Array(stride(from: 0, to: 250, by: 5)))
    }

    @Test func zeroIsEveryFrame() {
        #expect(selected(fps: 0, [0, 0.04, 0.08, 0.08]) == [0, 1, 2, 3])
    }

    // The first frame at or after each step, counted from the first frame's time; a gap skips
    // the steps it covers, and a time going backwards is not analyzed again.
    @Test func stepsCountFromTheFirstFrame() {
        #expect(selected(fps: 2, [10.1, 10.3, 10.6, 10.7, 12.0, 11.9, 12.7]) == [0, 2, 4, 6])
    }
}
