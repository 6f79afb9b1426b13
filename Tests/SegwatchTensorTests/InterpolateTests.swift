import SegwatchTensor
import SegwatchTestSupport
import Testing

@Suite(.twoThreads) struct InterpolateTests {
    // Up, down and mixed sizes, against torch.nn.functional.interpolate(align_corners=False).
    @Test(arguments: [InterpolationMode.bilinear, .bicubic], [(9, 4), (12, 15), (3, 3), (5, 20)])
    func matchesTorch(mode: InterpolationMode, size: (Int, Int)) throws {
        let out = try interpolate(References.tensor("interpolate.x"), size: size, mode: mode)
        try expectMatches(out, "interpolate.\(mode.rawValue)_\(size.0)x\(size.1)")
    }

    @Test func sameSizeIsACopy() throws {
        let x = try References.tensor("interpolate.x")
        #expect(interpolate(x, size: (5, 7), mode: .bicubic).toArray() == x.toArray())
    }
}
