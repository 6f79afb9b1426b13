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

    // antialias=True: the filter stretched when shrinking (a 5x7 input to 2x3 spans most of
    // it), Keys' A = -0.5 even when growing; guards DINOv2 with registers' positions.
    @Test(arguments: [InterpolationMode.bilinear, .bicubic], [(9, 4), (12, 15), (3, 3), (5, 20), (2, 3)])
    func antialiasedMatchesTorch(mode: InterpolationMode, size: (Int, Int)) throws {
        let out = try interpolate(References.tensor("interpolate.x"), size: size, mode: mode, antialias: true)
        try expectMatches(out, "interpolate_aa.\(mode.rawValue)_\(size.0)x\(size.1)")
    }

    /// Keeping the top-left part computes exactly those values of the whole output.
    @Test(arguments: [InterpolationMode.bilinear, .bicubic], [((9, 4), (9, 1)), ((12, 15), (5, 15)), ((40, 30), (17, 23))])
    func keepingComputesThePartOfTheWholeOutput(mode: InterpolationMode, sizes: ((Int, Int), (Int, Int))) throws {
        let (size, kept) = sizes
        let x = try References.tensor("interpolate.x")
        let whole = interpolate(x, size: size, mode: mode)
        let (height, width) = (x.shape[2], x.shape[3])
        let part = PlaneInterpolation(input: (height, width), size: size, keeping: kept, mode: mode)
        var out = [Float](repeating: .nan, count: kept.0 * kept.1)
        var rows = [Float](repeating: .nan, count: part.scratchCount)
        for plane in 0..<(x.shape[0] * x.shape[1]) {
            part.apply(x.contiguous().pointer + plane * height * width, into: &out, rows: &rows)
            let expected = whole.sliced(0, plane / x.shape[1]..<plane / x.shape[1] + 1).sliced(1, plane % x.shape[1]..<plane % x.shape[1] + 1)
                .sliced(2, 0..<kept.0).sliced(3, 0..<kept.1).toArray()
            #expect(out == expected)
        }
    }

    @Test func sameSizeIsACopy() throws {
        let x = try References.tensor("interpolate.x")
        #expect(interpolate(x, size: (5, 7), mode: .bicubic).toArray() == x.toArray())
    }
}
