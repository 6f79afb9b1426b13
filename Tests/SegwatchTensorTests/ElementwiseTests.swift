import SegwatchTensor
import SegwatchTestSupport
import Testing

@Suite(.twoThreads) struct ElementwiseTests {
    @Test func padWithAConstant() throws {
        let out = try pad(References.tensor("pad.x"), [(0, 0), (1, 2), (0, 3)], value: -1.5)
        try expectMatches(out, "pad.out", atol: 0)
    }

    @Test func broadcastAddAndMultiply() throws {
        let a = try References.tensor("broadcast.a"), b = try References.tensor("broadcast.b")
        try expectMatches(add(a, b), "broadcast.add")
        try expectMatches(mul(a, b), "broadcast.mul")
    }

    @Test func scalarsAndEmptyTensors() {
        #expect(add(Tensor(shape: [], values: [2]), Tensor(shape: [], values: [3])).toArray() == [5])
        #expect(mul(Tensor(shape: [2], values: [2, 4]), Tensor(shape: [], values: [0.5])).toArray() == [1, 2])
        #expect(add(Tensor(zeros: [0, 3]), Tensor(zeros: [3])).shape == [0, 3])
    }

    @Test func concatAndMean() throws {
        try expectMatches(concat([References.tensor("concat.a"), References.tensor("concat.b")], dim: 1), "concat.out", atol: 0)
        try expectMatches(mean(References.tensor("mean.x"), dim: 1, keepDim: true), "mean.out")
    }

    /// Every strided copy against the element-by-element walk of the view: runs of 2 (the
    /// masks' pixel shuffle), transpositions, slices, broadcasts, one long strided dimension.
    @Test(arguments: [
        ([2, 3, 4, 2, 2, 4, 2, 2], [0, 1, 2, 4, 6, 3, 5, 7]),
        ([64, 300], [1, 0]),
        ([5, 7, 9], [2, 0, 1]),
        ([3, 70000], [1, 0]),
        ([2, 1, 33, 17], [3, 1, 0, 2]),
    ])
    func permutedCopies(shape: [Int], order: [Int]) {
        let count = shape.reduce(1, *)
        let x = Tensor(shape: shape, values: (0..<count).map { Float($0) * 0.5 - 7 })
        let view = x.permuted(order)
        let copy = view.contiguous()
        #expect(copy.isContiguous)
        #expect(copy.toArray() == view.toArray())
        let sliced = view.sliced(0, 1..<view.shape[0]).sliced(view.rank - 1, 0..<max(1, view.shape[view.rank - 1] / 2))
        #expect(sliced.contiguous().toArray() == sliced.toArray())
    }

    /// One value per row against a row of values, either side: each row scaled or shifted.
    @Test func rowScalarsBroadcast() {
        let rows = Tensor(shape: [3, 5], values: (0..<15).map { Float($0) * 0.75 - 4 })
        let scalars = Tensor(shape: [3, 1], values: [2, -0.5, 3])
        let operations: [(BinaryOperation, (Float, Float) -> Float)] = [(.add, +), (.subtract, -), (.multiply, *), (.divide, /)]
        for (operation, apply) in operations {
            let expected = (0..<15).map { apply(rows.toArray()[$0], scalars.toArray()[$0 / 5]) }
            #expect(binary(rows, operation, scalars).toArray() == expected, "\(operation)")
            let swapped = (0..<15).map { apply(scalars.toArray()[$0 / 5], rows.toArray()[$0]) }
            #expect(binary(scalars, operation, rows).toArray() == swapped, "\(operation), swapped")
        }
    }

    @Test func broadcastCopy() {
        let x = Tensor(shape: [3, 1, 2], values: [1, 2, 3, 4, 5, 6]).expanded([3, 5, 2])
        #expect(x.contiguous().toArray() == x.toArray())
        #expect(x.contiguous().toArray().prefix(4) == [1, 2, 1, 2])
    }

    @Test func argmaxTakesTheFirstOfTies() {
        let x = Tensor(shape: [3, 4], values: [1, 3, 3, 0, -5, -4, -4, -6, 0, 0, 0, 0])
        #expect(argmax(x) == [1, 1, 0])
    }

    @Test func affineScalesAndShifts() {
        let x = Tensor(shape: [3], values: [1, -2, 0.5])
        #expect(affine(x, scale: 2, shift: 1).toArray() == [3, -3, 2])
    }
}
