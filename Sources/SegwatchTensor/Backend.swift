/// Where model code runs: the op set SAM, TinyViT and CLIP need, on tensors in the backend's
/// own memory.
///
/// Host memory (`Tensor`) and backend memory (`Value`) are distinct: model weights and inputs
/// are `upload`ed once, results `download`ed at the end. On the CPU the two are the same bytes,
/// so both are free there; a GPU backend copies. Model code is generic over the backend and
/// never touches a `Value`'s contents directly.
public protocol Backend: Sendable {
    associatedtype Value: Sendable

    /// A host tensor in the backend's memory (any strides in; contiguous there).
    func upload(_ tensor: Tensor) -> Value
    /// A value back on the host, contiguous. On a device this waits for the work recorded so far.
    func download(_ value: Value) -> Tensor
    func shape(_ value: Value) -> [Int]

    // Views and layout. Views (reshape of contiguous data, permute, slice, select, expand) share
    // their operand's memory and run nothing; the rest make new contiguous values.
    /// The same elements under `shape` (same count); a strided operand is laid out first.
    func reshape(_ x: Value, _ shape: [Int]) -> Value
    /// Dimensions in `order` (`torch.permute`): a view.
    func permute(_ x: Value, _ order: [Int]) -> Value
    /// `range` of dimension `dim`: a view.
    func slice(_ x: Value, dim: Int, _ range: Range<Int>) -> Value
    /// Index `index` of dimension `dim`, which goes: a view.
    func select(_ x: Value, dim: Int, _ index: Int) -> Value
    /// Size-1 dimensions repeated to `shape` with stride 0 (`torch.expand`): a view.
    func expand(_ x: Value, _ shape: [Int]) -> Value
    /// `x` row-major without gaps (itself when it already is).
    func contiguous(_ x: Value) -> Value
    /// `torch.cat` along `dim`: every other dimension equal.
    func concat(_ values: [Value], dim: Int) -> Value
    /// `torch.nn.functional.pad` with a constant: `padding[d]` is (before, after) of dimension d.
    func pad(_ x: Value, _ padding: [(before: Int, after: Int)], value: Float) -> Value
    /// SAM's `window_partition`: `[B, H, W, C]` -> `[B * windows, size, size, C]`, H and W
    /// zero-padded to multiples of `size`; the padded size, for `windowUnpartition`.
    func windowPartition(_ x: Value, size: Int) -> (windows: Value, padded: (h: Int, w: Int))
    /// SAM's `window_unpartition`: `windowPartition` undone, the padding dropped: `[B, H, W, C]`.
    func windowUnpartition(_ windows: Value, size: Int, padded: (h: Int, w: Int), original: (h: Int, w: Int)) -> Value

    // Products and convolutions. Sums are float32, in whatever order the backend's kernels take.
    /// `torch.matmul` for rank >= 2: `[..., M, K] x [..., K, N] -> [..., M, N]`, batch dimensions
    /// broadcast; operands may be strided (transposed views included).
    func matmul(_ a: Value, _ b: Value) -> Value
    /// `x weight^T + bias + residual`: the residual is where the product accumulates, so a
    /// transformer's skip connection costs no pass of its own. `x [..., in]`, `weight [out, in]`
    /// (plain, or as `linearWeight` laid it out), `bias [out]`, residual the output's shape.
    func linear(_ x: Value, weight: Value, bias: Value?, adding residual: Value?) -> Value
    /// `activate(linear(x, weight, bias), activation)`, in one pass where the backend can.
    func linear(_ x: Value, weight: Value, bias: Value?, activation: Activation) -> Value
    /// A linear layer's `[out, in]` weight as `linear` reads it fastest, done once at load. The
    /// result is only for `linear`: the CPU backend keeps the weight packed for its own product
    /// and drops the plain values (as bfloat16 with `--precision bfloat16`); a device may store it
    /// as float16 (`--precision float16`).
    func linearWeight(_ weight: Value) -> Value
    /// `torch.nn.functional.conv2d` on NCHW input: `weight [Cout, Cin / groups, kh, kw]`,
    /// `bias [Cout]`, stride, padding, dilation and groups in `options`, then its activation.
    func conv2d(_ x: Value, weight: Value, bias: Value?, _ options: Conv2dOptions) -> Value
    /// Depthwise `conv2d` on channels-last `[batch, H, W, C]` input, giving `[batch, outH, outW, C]`.
    func depthwiseConv2dChannelsLast(_ x: Value, weight: Value, bias: Value?, _ options: Conv2dOptions) -> Value
    /// `torch.nn.functional.conv_transpose2d` with kernel size equal to `stride` and no padding
    /// (SAM's upscaler): NCHW input, `weight [Cin, Cout, stride, stride]`, `bias [Cout]`.
    func convTranspose2d(_ x: Value, weight: Value, bias: Value?, stride: Int) -> Value

    // Norms, activations, attention.
    /// `torch.nn.functional.layer_norm` over the last dimension: `weight`, `bias` of its size.
    func layerNorm(_ x: Value, weight: Value, bias: Value, eps: Float) -> Value
    /// `layerNorm(x + residual)`, the sum never stored whole; `x` may have batch 1 against the
    /// residual's B.
    func layerNorm(_ x: Value, adding residual: Value, weight: Value, bias: Value, eps: Float) -> Value
    /// SAM's `LayerNorm2d`: NCHW input normalized over channels at every pixel.
    func layerNorm2d(_ x: Value, weight: Value, bias: Value, eps: Float) -> Value
    /// `activation` of every element, with torch's definitions.
    func activate(_ x: Value, _ activation: Activation) -> Value
    /// Softmax over the last dimension; a fully masked row gives zeros, not NaN.
    func softmax(_ x: Value) -> Value
    /// Scaled dot-product attention, `softmax(scale q k^T + bias + relative positions) v`, on
    /// `[B, heads, N, d]` queries, keys and values (strided views welcome), tiled so that the
    /// scores are never stored whole: `[B, Nq, heads * dv]`, the heads recombined as every
    /// reference model does next. `options` holds the scale, the causal mask, an additive bias
    /// (`[heads, Nq, Nk]` or `[B, heads, Nq, Nk]`) and SAM's decomposed relative positions.
    func attention(q: Value, k: Value, v: Value, _ options: AttentionOptions<Value>) -> Value
    /// SAM's decomposed relative-position terms for queries `q [B, heads, qh * qw, C]` on a
    /// `queryGrid` attending to a `keyGrid`, with tables `rel_pos_h` and `rel_pos_w` (resized
    /// linearly when they do not fit the grids): what `attention` adds to each score.
    func relativePositionBias(q: Value, tableH: Value, tableW: Value,
                              queryGrid: (h: Int, w: Int), keyGrid: (h: Int, w: Int)) -> RelativePositionBias<Value>

    // Resampling and elementwise.
    /// `torch.nn.functional.interpolate` of NCHW input to `size`, `align_corners=False`, no
    /// antialiasing; bilinear or bicubic (A = -0.75).
    func interpolate(_ x: Value, size: (h: Int, w: Int), mode: InterpolationMode) -> Value
    /// `a op b` with torch's broadcasting.
    func binary(_ a: Value, _ operation: BinaryOperation, _ b: Value) -> Value
    /// `x * scale + shift` for every element.
    func affine(_ x: Value, scale: Float, shift: Float) -> Value
    /// `x.mean(dim, keepdim)`.
    func mean(_ x: Value, dim: Int, keepDim: Bool) -> Value
    /// The index of each last-dimension row's largest value (`torch.argmax`: the first of ties,
    /// NaN above any number), on the host.
    func argmax(_ x: Value) -> [Int]
    /// `x` (`[..., H, W]`) as binary masks, every leading index a plane: the pixels above
    /// `threshold` as bits, and the values above each of `thresholds` (at most
    /// `maskBitsThresholds`) counted. A device makes them where the values are, so that only
    /// bits cross to the host.
    func maskBits(_ x: Value, threshold: Float, counting thresholds: [Float]) -> MaskBits

    /// Whether values live in memory of their own (a GPU's), so that work ending in a small
    /// result (`maskBits`) is better done there than on the host after a download.
    var isDevice: Bool { get }
    /// The largest value the backend can hold, in bytes: work that could make a larger one is
    /// split, or done another way, instead of failing.
    var maximumValueBytes: Int { get }

    /// Runs `body` for each of `0..<count`, independent items of work, as the backend best
    /// overlaps them: the CPU gives each thread whole items, every op inside on that thread.
    func concurrently(_ count: Int, _ body: @Sendable (Int) -> Void)
    /// How many items `concurrently` runs at once: the CPU's threads, a device's one queue.
    /// Work split into items takes as many of equal size, so that none waits on the longest.
    var concurrentItems: Int { get }

    /// Waits until the work asked for so far has run. A device backend records ops and runs
    /// them when the host reads a result; a stage that ends in device values calls this so that
    /// its time is its own (the SAM encoder's before the decoder reads its embedding). The CPU
    /// runs each op when called: nothing to wait for.
    func synchronize()

    /// Runs `body`, host-side work on the backend's results (mask post-processing, pooling and
    /// classification on host tensors), under the backend's execution state: the CPU backend
    /// runs it under its engine, so those kernels share the models' threads and buffers.
    func runOnHost<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T
}

extension Backend {
    public func linear(_ x: Value, weight: Value, bias: Value?) -> Value {
        linear(x, weight: weight, bias: bias, adding: nil)
    }
}

/// The CPU backend: the packed AVX2 product and OpenBLAS sgemm for the products, Swift
/// kernels for the rest, every op run under `engine` (its threads, workers and buffers).
/// Its values are host tensors.
public struct CPUBackend: Backend {
    public typealias Value = Tensor

    public let engine: CPUEngine
    /// Whether linear layers, the fused attention heads and `matmul` (untransposed operands)
    /// multiply in bfloat16, their operands rounded to it and their sums float32 (`--precision
    /// bfloat16`; only where `cpuRunsBFloat16`).
    public let multipliesInBFloat16: Bool

    public init(engine: CPUEngine, multipliesInBFloat16: Bool = false) {
        precondition(!multipliesInBFloat16 || cpuRunsBFloat16, "bfloat16 products on a CPU without AVX512_BF16")
        (self.engine, self.multipliesInBFloat16) = (engine, multipliesInBFloat16)
    }

    public func upload(_ tensor: Tensor) -> Tensor { tensor }
    public func download(_ value: Tensor) -> Tensor { value }
    public func shape(_ value: Tensor) -> [Int] { value.shape }

    // Views take no buffer and run no kernel, so they need no engine.
    public func reshape(_ x: Tensor, _ shape: [Int]) -> Tensor { x.reshaped(shape) }
    public func permute(_ x: Tensor, _ order: [Int]) -> Tensor { x.permuted(order) }
    public func slice(_ x: Tensor, dim: Int, _ range: Range<Int>) -> Tensor { x.sliced(dim, range) }
    public func select(_ x: Tensor, dim: Int, _ index: Int) -> Tensor { x.selected(dim, index) }
    public func expand(_ x: Tensor, _ shape: [Int]) -> Tensor { x.expanded(shape) }
    public func contiguous(_ x: Tensor) -> Tensor { engine.run { x.contiguous() } }
    public func concat(_ values: [Tensor], dim: Int) -> Tensor { engine.run { SegwatchTensor.concat(values, dim: dim) } }
    public func pad(_ x: Tensor, _ padding: [(before: Int, after: Int)], value: Float) -> Tensor {
        engine.run { SegwatchTensor.pad(x, padding, value: value) }
    }
    public func windowPartition(_ x: Tensor, size: Int) -> (windows: Tensor, padded: (h: Int, w: Int)) {
        engine.run { SegwatchTensor.windowPartition(x, size: size) }
    }
    public func windowUnpartition(_ windows: Tensor, size: Int, padded: (h: Int, w: Int), original: (h: Int, w: Int)) -> Tensor {
        engine.run { SegwatchTensor.windowUnpartition(windows, size: size, padded: padded, original: original) }
    }

    public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor { engine.run { SegwatchTensor.matmul(a, b, bfloat16: multipliesInBFloat16) } }
    public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, adding residual: Tensor?) -> Tensor {
        engine.run { SegwatchTensor.linear(x, weight: weight, bias: bias, adding: residual) }
    }

    public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Activation) -> Tensor {
        engine.run { SegwatchTensor.linear(x, weight: weight, bias: bias, activation: activation) }
    }

    public func linearWeight(_ weight: Tensor) -> Tensor {
        engine.run { packedForLinear(weight, bfloat16: multipliesInBFloat16) }
    }
    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, _ options: Conv2dOptions) -> Tensor {
        engine.run { SegwatchTensor.conv2d(x, weight: weight, bias: bias, options) }
    }
    public func depthwiseConv2dChannelsLast(_ x: Tensor, weight: Tensor, bias: Tensor?, _ options: Conv2dOptions) -> Tensor {
        engine.run { SegwatchTensor.depthwiseConv2dChannelsLast(x, weight: weight, bias: bias, options) }
    }
    public func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int) -> Tensor {
        engine.run { SegwatchTensor.convTranspose2d(x, weight: weight, bias: bias, stride: stride) }
    }

    public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
        engine.run { SegwatchTensor.layerNorm(x, weight: weight, bias: bias, eps: eps) }
    }
    public func layerNorm(_ x: Tensor, adding residual: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
        engine.run { SegwatchTensor.layerNorm(x, adding: residual, weight: weight, bias: bias, eps: eps) }
    }
    public func layerNorm2d(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
        engine.run { SegwatchTensor.layerNorm2d(x, weight: weight, bias: bias, eps: eps) }
    }
    public func activate(_ x: Tensor, _ activation: Activation) -> Tensor { engine.run { SegwatchTensor.activate(x, activation) } }
    public func softmax(_ x: Tensor) -> Tensor { engine.run { SegwatchTensor.softmax(x) } }
    public func attention(q: Tensor, k: Tensor, v: Tensor, _ options: AttentionOptions<Tensor>) -> Tensor {
        engine.run { SegwatchTensor.attention(q: q, k: k, v: v, options, bfloat16: multipliesInBFloat16) }
    }
    public func relativePositionBias(q: Tensor, tableH: Tensor, tableW: Tensor,
                                     queryGrid: (h: Int, w: Int), keyGrid: (h: Int, w: Int)) -> RelativePositionBias<Tensor> {
        engine.run { SegwatchTensor.relativePositionBias(q: q, tableH: tableH, tableW: tableW, queryGrid: queryGrid, keyGrid: keyGrid) }
    }

    public func interpolate(_ x: Tensor, size: (h: Int, w: Int), mode: InterpolationMode) -> Tensor {
        engine.run { SegwatchTensor.interpolate(x, size: size, mode: mode) }
    }
    public func binary(_ a: Tensor, _ operation: BinaryOperation, _ b: Tensor) -> Tensor {
        engine.run { SegwatchTensor.binary(a, operation, b) }
    }
    public func affine(_ x: Tensor, scale: Float, shift: Float) -> Tensor { engine.run { SegwatchTensor.affine(x, scale: scale, shift: shift) } }
    public func mean(_ x: Tensor, dim: Int, keepDim: Bool) -> Tensor { engine.run { SegwatchTensor.mean(x, dim: dim, keepDim: keepDim) } }
    public func argmax(_ x: Tensor) -> [Int] { engine.run { SegwatchTensor.argmax(x) } }
    public func maskBits(_ x: Tensor, threshold: Float, counting thresholds: [Float]) -> MaskBits {
        engine.run { SegwatchTensor.maskBits(x, threshold: threshold, counting: thresholds) }
    }
    public var isDevice: Bool { false }
    public var maximumValueBytes: Int { Int.max }

    public func concurrently(_ count: Int, _ body: @Sendable (Int) -> Void) {
        engine.run { parallelFor(count) { range in range.forEach(body) } }
    }

    public var concurrentItems: Int { engine.threads }

    public func synchronize() {}

    public func runOnHost<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T { try engine.run(body) }
}
