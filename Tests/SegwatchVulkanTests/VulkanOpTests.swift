import SegwatchTensor
import SegwatchVulkan
import Testing

/// The Vulkan backend against the CPU backend, op by op: every op on random shapes (odd sizes,
/// strided views, broadcasting), each compared by normalized error (ggml's test-backend-ops
/// discipline). On a machine without a GPU the device is Mesa's lavapipe.
enum Devices {
    static let vulkan = Result { () throws(VulkanError) in try VulkanBackend() }
    static let cpu = CPUBackend(engine: CPUEngine(threads: 2))
}

/// Runs every case on both backends and expects each within its tolerance.
func check(_ cases: [OpCase], seed: UInt64) throws {
    let vulkan = try Devices.vulkan.get()
    for c in cases {
        let expected = evaluate(c, on: Devices.cpu)
        let actual = evaluate(c, on: vulkan)
        #expect(actual.shape == expected.shape, "\(c) (seed \(seed)): shape \(actual.shape), expected \(expected.shape)")
        guard actual.shape == expected.shape else { continue }
        let error = normalizedError(actual, expected)
        #expect(error <= c.tolerance, "\(c) (seed \(seed)): normalized error \(error), allowed \(c.tolerance)")
    }
}

@Suite("Vulkan ops against the CPU backend")
struct VulkanOpTests {
    @Test("layout: contiguous copies of permuted, sliced, selected and expanded views; reshape, concat, pad, windows",
          arguments: [1, 2, 3] as [UInt64])
    func layout(seed: UInt64) throws {
        var r = SeededNumbers(state: seed)
        let (a, b, c, d) = (r.int(1...5), r.int(1...17), r.int(2...9), r.int(1...33))
        var cases: [OpCase] = [
            OpCase(name: "permute 4d", inputs: [r.tensor([a, b, c, d])], views: [.permute([2, 0, 3, 1])], op: .contiguous, tolerance: 0),
            OpCase(name: "permute 6d", inputs: [r.tensor([2, c, 3, a, 2, d])], views: [.permute([0, 3, 1, 4, 2, 5])], op: .contiguous,
                   tolerance: 0),
            OpCase(name: "slice", inputs: [r.tensor([a, b + 2, d])], views: [.slice(dim: 1, 1..<(b + 1))], op: .contiguous, tolerance: 0),
            OpCase(name: "select", inputs: [r.tensor([a, c, d])], op: .select(dim: 1, index: c - 1), tolerance: 0),
            OpCase(name: "expand", inputs: [r.tensor([a, 1, d])], views: [.expand([a, c, d])], op: .contiguous, tolerance: 0),
            OpCase(name: "reshape of a permuted view", inputs: [r.tensor([c, d, a])], views: [.permute([1, 0, 2])],
                   op: .reshape([d * c * a]), tolerance: 0),
            OpCase(name: "pad", inputs: [r.tensor([a, c, d])], op: .pad([(0, 1), (2, 0), (1, 3)], -0.5), tolerance: 0),
            OpCase(name: "window partition, padded", inputs: [r.tensor([a, c + 5, d + 2, 3])], op: .windowPartition(4), tolerance: 0),
            OpCase(name: "window partition, exact", inputs: [r.tensor([1, 8, 12, c])], op: .windowPartition(4), tolerance: 0),
            OpCase(name: "window round trip", inputs: [r.tensor([a, c + 5, d + 2, 3])], op: .windowRoundTrip(4)),
        ]
        for dim in 0..<3 {
            var shapes = [[a, c, d], [a, c, d], [a, c, d]]
            for i in shapes.indices { shapes[i][dim] = r.int(1...6) }
            cases.append(OpCase(name: "concat dim \(dim)", inputs: shapes.map { r.tensor($0) }, op: .concat(dim: dim), tolerance: 0))
        }
        try check(cases, seed: seed)
    }

    @Test("products: matmul (batched, broadcast, transposed views), linear with bias, residual, activations, packed weights",
          arguments: [1, 2, 3] as [UInt64])
    func products(seed: UInt64) throws {
        var r = SeededNumbers(state: seed)
        let (m, k, n, batch, heads) = (r.int(1...130), r.int(1...150), r.int(1...97), r.int(1...3), r.int(1...4))
        var cases: [OpCase] = [
            OpCase(name: "matmul", inputs: [r.tensor([m, k]), r.tensor([k, n])], op: .matmul, tolerance: 1e-10),
            OpCase(name: "matmul batched", inputs: [r.tensor([batch, m, k]), r.tensor([batch, k, n])], op: .matmul, tolerance: 1e-10),
            OpCase(name: "matmul against one matrix", inputs: [r.tensor([batch, heads, m, k]), r.tensor([k, n])], op: .matmul,
                   tolerance: 1e-10),
            OpCase(name: "matmul broadcast", inputs: [r.tensor([batch, 1, m, k]), r.tensor([1, heads, k, n])], op: .matmul, tolerance: 1e-10),
            OpCase(name: "matmul transposed b", inputs: [r.tensor([batch, m, k]), r.tensor([batch, n, k])],
                   views: [.none, .permute([0, 2, 1])], op: .matmul, tolerance: 1e-10),
            OpCase(name: "matmul transposed a", inputs: [r.tensor([k, m]), r.tensor([k, n])], views: [.permute([1, 0])], op: .matmul,
                   tolerance: 1e-10),
        ]
        for packed in [false, true] {
            let x = r.tensor([batch, m, k]), w = r.tensor([n, k], scale: 0.2), bias = r.tensor([n]), residual = r.tensor([batch, m, n])
            cases += [
                OpCase(name: "linear\(packed ? " packed" : "")", inputs: [x, w], op: .linear(bias: false, residual: false, packed: packed),
                       tolerance: 1e-10),
                OpCase(name: "linear + bias + residual\(packed ? " packed" : "")", inputs: [x, w, bias, residual],
                       op: .linear(bias: true, residual: true, packed: packed), tolerance: 1e-10),
                OpCase(name: "linear of a strided input\(packed ? " packed" : "")", inputs: [r.tensor([m, batch, k]), w, bias],
                       views: [.permute([1, 0, 2])], op: .linear(bias: true, residual: false, packed: packed), tolerance: 1e-10),
            ]
            for activation in Activation.allCases {
                cases.append(OpCase(name: "linear + \(activation)\(packed ? " packed" : "")", inputs: [x, w, bias],
                                    op: .linearActivation(activation, packed: packed), tolerance: 1e-9))
            }
        }
        try check(cases, seed: seed)
    }

    @Test("convolutions: general (stride, padding, dilation, groups, activation), 1x1, patches, depthwise, transposed",
          arguments: [1, 2, 3] as [UInt64])
    func convolutions(seed: UInt64) throws {
        var r = SeededNumbers(state: seed)
        let (batch, channels, height, width) = (r.int(1...2), 2 * r.int(1...4), r.int(5...19), r.int(5...23))
        let out = 2 * r.int(1...5)
        let x = r.tensor([batch, channels, height, width])
        let bias = r.tensor([out])
        let cases: [OpCase] = [
            OpCase(name: "conv 3x3 stride 2 pad 1", inputs: [x, r.tensor([out, channels, 3, 3], scale: 0.3), bias],
                   op: .conv2d(Conv2dOptions(stride: 2, padding: 1), bias: true), tolerance: 1e-10),
            OpCase(name: "conv 3x2 dilation 2 + gelu", inputs: [x, r.tensor([out, channels, 3, 2], scale: 0.3), bias],
                   op: .conv2d(Conv2dOptions(stride: (1, 2), padding: (2, 1), dilation: (2, 1), activation: .gelu), bias: true), tolerance: 1e-9),
            OpCase(name: "conv groups 2", inputs: [x, r.tensor([out, channels / 2, 3, 3], scale: 0.3), bias],
                   op: .conv2d(Conv2dOptions(padding: 1, groups: 2), bias: true), tolerance: 1e-10),
            OpCase(name: "conv 1x1, no bias", inputs: [x, r.tensor([out, channels, 1, 1])], op: .conv2d(Conv2dOptions(), bias: false),
                   tolerance: 1e-10),
            OpCase(name: "conv patches 4x4 stride 4", inputs: [r.tensor([1, 3, 16, 20]), r.tensor([out, 3, 4, 4], scale: 0.3), bias],
                   op: .conv2d(Conv2dOptions(stride: 4), bias: true), tolerance: 1e-10),
            OpCase(name: "conv depthwise + relu", inputs: [x, r.tensor([channels, 1, 3, 3]), r.tensor([channels])],
                   op: .conv2d(Conv2dOptions(stride: 2, padding: 1, groups: channels, activation: .relu), bias: true), tolerance: 1e-10),
            OpCase(name: "depthwise channels-last", inputs: [r.tensor([batch, height, width, channels]), r.tensor([channels, 1, 3, 3]),
                                                             r.tensor([channels])],
                   op: .depthwiseChannelsLast(Conv2dOptions(padding: 1, groups: channels, activation: .gelu), bias: true), tolerance: 1e-9),
            OpCase(name: "conv transpose 2x2", inputs: [x, r.tensor([channels, out, 2, 2]), bias], op: .convTranspose(stride: 2, bias: true),
                   tolerance: 1e-10),
            OpCase(name: "conv transpose 2x2, no bias", inputs: [x, r.tensor([channels, out, 2, 2])], op: .convTranspose(stride: 2, bias: false),
                   tolerance: 1e-10),
        ]
        try check(cases, seed: seed)
    }

    @Test("norms, activations, softmax, affine, mean, broadcasting binary ops", arguments: [1, 2, 3] as [UInt64])
    func elementwise(seed: UInt64) throws {
        var r = SeededNumbers(state: seed)
        let (rows, channels, batch) = (r.int(1...40), r.int(1...700), r.int(2...3))
        var cases: [OpCase] = [
            OpCase(name: "layer norm", inputs: [r.tensor([rows, channels]), r.tensor([channels]), r.tensor([channels])], op: .layerNorm(residual: false),
                   tolerance: 1e-10),
            OpCase(name: "layer norm of x + residual", inputs: [r.tensor([batch, rows, channels]), r.tensor([channels]), r.tensor([channels]),
                                                                r.tensor([batch, rows, channels])], op: .layerNorm(residual: true), tolerance: 1e-10),
            OpCase(name: "layer norm of batch-1 x + residual", inputs: [r.tensor([1, rows, channels]), r.tensor([channels]), r.tensor([channels]),
                                                                        r.tensor([batch, rows, channels])], op: .layerNorm(residual: true), tolerance: 1e-10),
            OpCase(name: "layer norm 2d", inputs: [r.tensor([batch, r.int(1...40), r.int(1...9), r.int(1...11)])] + [r.tensor([0]), r.tensor([0])],
                   op: .layerNorm2d, tolerance: 1e-10),
            OpCase(name: "softmax", inputs: [r.tensor([rows, channels], scale: 8)], op: .softmax, tolerance: 1e-10),
            OpCase(name: "affine", inputs: [r.tensor([rows, channels])], op: .affine(0.7, -0.2), tolerance: 1e-12),
            OpCase(name: "mean dim 0", inputs: [r.tensor([batch, rows, 5])], op: .mean(dim: 0, keepDim: false), tolerance: 1e-10),
            OpCase(name: "mean dim 1 kept", inputs: [r.tensor([batch, rows, 5])], op: .mean(dim: 1, keepDim: true), tolerance: 1e-10),
            OpCase(name: "mean dim 2", inputs: [r.tensor([batch, rows, channels])], op: .mean(dim: 2, keepDim: false), tolerance: 1e-10),
        ]
        // layerNorm2d's weight and bias follow the input's channels.
        let planes = cases[3].inputs[0].shape[1]
        cases[3].inputs[1] = r.tensor([planes])
        cases[3].inputs[2] = r.tensor([planes])
        for activation in Activation.allCases {
            cases.append(OpCase(name: "\(activation)", inputs: [r.tensor([rows, channels], scale: 6)], op: .activate(activation), tolerance: 1e-10))
        }
        let operations: [BinaryOperation] = [.add, .subtract, .multiply, .divide]
        for operation in operations {
            cases += [
                OpCase(name: "\(operation) same shape", inputs: [r.tensor([rows, channels]), r.tensor([rows, channels])], op: .binary(operation),
                       tolerance: 1e-12),
                OpCase(name: "\(operation) broadcast row", inputs: [r.tensor([batch, rows, channels]), r.tensor([channels])],
                       op: .binary(operation), tolerance: 1e-12),
                OpCase(name: "\(operation) broadcast both", inputs: [r.tensor([batch, 1, channels]), r.tensor([rows, 1])],
                       op: .binary(operation), tolerance: 1e-12),
                OpCase(name: "\(operation) of a permuted view", inputs: [r.tensor([channels, rows]), r.tensor([rows, channels])],
                       views: [.permute([1, 0])], op: .binary(operation), tolerance: 1e-12),
            ]
        }
        try check(cases, seed: seed)
    }

    @Test("attention: plain, causal, biased, strided, head depths 16 to 128, relative positions", arguments: [1, 2, 3] as [UInt64])
    func attention(seed: UInt64) throws {
        var r = SeededNumbers(state: seed)
        var cases: [OpCase] = []
        for depth in [16, 32, 64, 80, 128] {
            let (batch, heads, queries, keys) = (r.int(1...2), r.int(1...3), r.int(1...150), r.int(1...90))
            let q = r.tensor([batch, heads, queries, depth]), k = r.tensor([batch, heads, keys, depth])
            let v = r.tensor([batch, heads, keys, depth])
            let scale = 1 / Float(depth).squareRoot()
            cases += [
                OpCase(name: "attention d\(depth)", inputs: [q, k, v], op: .attention(scale: scale, causal: false, bias: false), tolerance: 1e-10),
                OpCase(name: "attention d\(depth) bias", inputs: [q, k, v, r.tensor([heads, queries, keys])],
                       op: .attention(scale: scale, causal: false, bias: true), tolerance: 1e-10),
                OpCase(name: "attention d\(depth) batch bias", inputs: [q, k, v, r.tensor([batch, heads, queries, keys])],
                       op: .attention(scale: scale, causal: false, bias: true), tolerance: 1e-10),
            ]
            let square = r.tensor([batch, heads, keys, depth])
            cases.append(OpCase(name: "attention d\(depth) causal", inputs: [square, k, v], op: .attention(scale: scale, causal: true, bias: false),
                                tolerance: 1e-10))
            // q, k, v as views of [B, N, heads, d], as a transformer splits its heads.
            cases.append(OpCase(name: "attention d\(depth) strided", inputs: [r.tensor([batch, queries, heads, depth]),
                                                                              r.tensor([batch, keys, heads, depth]),
                                                                              r.tensor([batch, keys, heads, depth])],
                                views: [.permute([0, 2, 1, 3]), .permute([0, 2, 1, 3]), .permute([0, 2, 1, 3])],
                                op: .attention(scale: scale, causal: false, bias: false), tolerance: 1e-10))
        }
        // SAM's decomposed relative positions: tables that fit (2 max - 1 rows) and tables resized.
        for (grid, rows) in [((5, 7), 13), ((6, 6), 9)] {
            let tokens = grid.0 * grid.1, depth = 16
            let inputs = [r.tensor([2, 2, tokens, depth]), r.tensor([2, 2, tokens, depth]), r.tensor([2, 2, tokens, depth]),
                          r.tensor([rows, depth]), r.tensor([rows, depth])]
            cases += [
                OpCase(name: "relative height \(grid), table \(rows)", inputs: [inputs[0], inputs[3], inputs[4]],
                       op: .relativeTerms(queryGrid: grid, keyGrid: grid, height: true), tolerance: 1e-10),
                OpCase(name: "relative width \(grid), table \(rows)", inputs: [inputs[0], inputs[3], inputs[4]],
                       op: .relativeTerms(queryGrid: grid, keyGrid: grid, height: false), tolerance: 1e-10),
                OpCase(name: "attention with relative positions \(grid), table \(rows)", inputs: inputs,
                       op: .relativeAttention(queryGrid: grid, keyGrid: grid), tolerance: 1e-10),
            ]
        }
        try check(cases, seed: seed)
    }

    @Test("interpolation: bilinear and bicubic, up, down and the same size", arguments: [1, 2, 3] as [UInt64])
    func interpolation(seed: UInt64) throws {
        var r = SeededNumbers(state: seed)
        var cases: [OpCase] = []
        for mode in [InterpolationMode.bilinear, .bicubic] {
            let x = r.tensor([r.int(1...2), r.int(1...3), r.int(1...17), r.int(2...19)])
            cases += [
                OpCase(name: "\(mode) up", inputs: [x], op: .interpolate(x.shape[2] * 2 + 3, x.shape[3] * 3, mode), tolerance: 1e-12),
                OpCase(name: "\(mode) down", inputs: [x], op: .interpolate(max(x.shape[2] / 2, 1), max(x.shape[3] / 3, 1), mode), tolerance: 1e-12),
                OpCase(name: "\(mode) same", inputs: [x], op: .interpolate(x.shape[2], x.shape[3], mode), tolerance: 0),
            ]
        }
        try check(cases, seed: seed)
    }

    /// Rows whose every score is masked (-infinity) are zeros on both backends, not NaN.
    @Test("fully masked rows: softmax and attention give zeros")
    func fullyMaskedRows() throws {
        var r = SeededNumbers(state: 9)
        var scores = r.tensor([4, 37]).toArray()
        for i in 37..<74 { scores[i] = -.infinity }
        var bias = r.tensor([2, 5, 6]).toArray()
        for i in 0..<6 { bias[i] = -.infinity }
        try check([
            OpCase(name: "softmax of a masked row", inputs: [Tensor(shape: [4, 37], values: scores)], op: .softmax, tolerance: 1e-10),
            OpCase(name: "attention with a masked query", inputs: [r.tensor([1, 2, 5, 16]), r.tensor([1, 2, 6, 16]), r.tensor([1, 2, 6, 16]),
                                                                   Tensor(shape: [2, 5, 6], values: bias)],
                   op: .attention(scale: 0.25, causal: false, bias: true), tolerance: 1e-10),
        ], seed: 9)
    }

    /// More products, or heads, than one dispatch's workgroup grid holds (65535 on most devices):
    /// the work is split, not refused.
    @Test("products and attention over more items than a dispatch holds")
    func overTheWorkgroupLimit() throws {
        var r = SeededNumbers(state: 5)
        let items = 70_000
        try check([
            OpCase(name: "matmul of 70,000 products", inputs: [r.tensor([items, 2, 3]), r.tensor([items, 3, 2])], op: .matmul, tolerance: 1e-10),
            OpCase(name: "attention over 70,000 heads", inputs: [r.tensor([items, 1, 2, 4]), r.tensor([items, 1, 3, 4]), r.tensor([items, 1, 3, 4])],
                   op: .attention(scale: 0.5, causal: false, bias: false), tolerance: 1e-10),
        ], seed: 5)
    }

    @Test("argmax: the first of ties, NaN above numbers")
    func argmax() throws {
        let vulkan = try Devices.vulkan.get()
        var r = SeededNumbers(state: 7)
        let x = r.tensor([37, 53])
        let ties = Tensor(shape: [3, 4], values: [1, 3, 3, 2, .nan, 5, 5, 1, 0, 0, 0, 0])
        for input in [x, ties] {
            #expect(vulkan.argmax(vulkan.upload(input)) == argmaxOnCPU(input))
        }
        #expect(vulkan.argmax(vulkan.upload(ties)) == [1, 0, 0])
    }

    @Test("float16 weights: the products of the weights rounded to float16, summed in float32")
    func float16Weights() throws {
        let half = try VulkanBackend(float16Weights: true)
        #expect(half.float16Weights)
        var r = SeededNumbers(state: 13)
        for _ in 0..<3 {
            let (rows, inputs, outputs) = (r.int(1...70), r.int(1...150), r.int(1...90))
            let x = r.tensor([rows, inputs]), w = r.tensor([outputs, inputs], scale: 0.2), bias = r.tensor([outputs])
            let rounded = Tensor(shape: w.shape, values: w.toArray().map { Float(Float16($0)) })
            let cpu = Devices.cpu
            let onDevice = half.download(half.linear(half.upload(x), weight: half.linearWeight(half.upload(w)), bias: half.upload(bias),
                                                     activation: .gelu))
            // Exactly the CPU's product of the rounded weights, up to the order of the sums...
            let ofRounded = cpu.linear(x, weight: cpu.linearWeight(rounded), bias: bias, activation: .gelu)
            #expect(normalizedError(onDevice, ofRounded) <= 1e-10)
            // ...and within float16's rounding of the float32 product, not equal to it.
            let exact = cpu.linear(x, weight: cpu.linearWeight(w), bias: bias, activation: .gelu)
            let error = normalizedError(onDevice, exact)
            #expect(error > 0 && error <= 1e-6, "\(error)")
        }
    }

    @Test("maskBits: the same bits and counts as the CPU, on odd sizes, views and values at the thresholds")
    func maskBits() throws {
        let vulkan = try Devices.vulkan.get()
        var r = SeededNumbers(state: 11)
        for _ in 0..<3 {
            let (planes, height, width) = (r.int(1...7), r.int(1...70), r.int(1...90))
            let x = r.tensor([planes, height, width], scale: 2)
            // Values exactly at the thresholds, which are not above them.
            for i in stride(from: 0, to: x.count, by: 7) { x.pointer[i] = [0, 1, -1][i % 3] }
            let expected = Devices.cpu.maskBits(x, threshold: 0, counting: [1, -1, 0.5])
            #expect(vulkan.maskBits(vulkan.upload(x), threshold: 0, counting: [1, -1, 0.5]) == expected)
            // A strided view, and no counts.
            #expect(vulkan.maskBits(vulkan.permute(vulkan.upload(x), [0, 2, 1]), threshold: 0.25, counting: [])
                    == Devices.cpu.maskBits(x.permuted([0, 2, 1]), threshold: 0.25, counting: []))
        }
        // The layout itself: pixel (y, x) is bit (x * height + y).
        let plane = Tensor(shape: [1, 2, 3], values: [1, 0, 0, 0, 0, 1])
        let bits = vulkan.maskBits(vulkan.upload(plane), threshold: 0.5, counting: [0.5])
        #expect(bits.words == [0b10_0001] && bits.counts == [2])
    }
}

private func argmaxOnCPU(_ x: Tensor) -> [Int] { Devices.cpu.argmax(x) }
