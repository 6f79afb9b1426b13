// Ports mobile_sam/modeling/tiny_vit_sam.py (TinyViT and its parts) of mobilesam-mirror 1.0.0:
// MobileSAM's image encoder.
//
// Hyper-parameters come from the checkpoint's shapes: stage widths from each stage's first
// convolution, depths from the number of `blocks.*`, heads from `attention_biases`' rows, window
// sizes from its columns (a w x w window has w^2 distinct offsets), MLP width from `mlp.fc1`.
import SegwatchNN
import SegwatchTensor

/// `Conv2d_BN`: a bias-free convolution followed by BatchNorm, folded into one convolution
/// at load (as the reference's `fuse()` does; inference BatchNorm is affine).
func conv2dBN<B: Backend>(_ w: Weights<B>, input: Int, output: Int, kernel: Int, _ options: Conv2dOptions = .init()) throws -> Conv2d<B> {
    let weight = try w.host("c.weight", [output, input / options.groups, kernel, kernel])
    let folded = foldBatchNorm(weight: weight, bias: nil,
                               gamma: try w.host("bn.weight", [output]), beta: try w.host("bn.bias", [output]),
                               runningMean: try w.host("bn.running_mean", [output]),
                               runningVar: try w.host("bn.running_var", [output]), eps: 1e-5)
    w.ignore("bn.num_batches_tracked")
    return Conv2d(backend: w.backend, weight: folded.weight, bias: folded.bias, options)
}

/// `PatchEmbed`: two stride-2 3x3 convolutions, 1024 -> 256.
struct TinyViTPatchEmbed<B: Backend>: Sendable {
    let backend: B
    let conv0: Conv2d<B>
    let conv1: Conv2d<B>

    init(_ w: Weights<B>, embedDim: Int) throws {
        backend = w.backend
        conv0 = try conv2dBN(w.scope("seq.0"), input: 3, output: embedDim / 2, kernel: 3, Conv2dOptions(stride: 2, padding: 1, activation: .gelu))
        conv1 = try conv2dBN(w.scope("seq.2"), input: embedDim / 2, output: embedDim, kernel: 3, Conv2dOptions(stride: 2, padding: 1))
    }

    func callAsFunction(_ x: B.Value) -> B.Value {
        conv1(conv0(x))
    }
}

/// `MBConv`: inverted residual (1x1 expand, 3x3 depthwise, 1x1 project) on NCHW.
struct MBConv<B: Backend>: Sendable {
    let backend: B
    let conv1: Conv2d<B>
    let conv2: Conv2d<B>
    let conv3: Conv2d<B>

    init(_ w: Weights<B>, dim: Int) throws {
        backend = w.backend
        let hidden = try w.requireShape("conv1.c.weight", rank: 4)[0]
        conv1 = try conv2dBN(w.scope("conv1"), input: dim, output: hidden, kernel: 1, Conv2dOptions(activation: .gelu))
        conv2 = try conv2dBN(w.scope("conv2"), input: hidden, output: hidden, kernel: 3, Conv2dOptions(padding: 1, groups: hidden, activation: .gelu))
        conv3 = try conv2dBN(w.scope("conv3"), input: hidden, output: dim, kernel: 1)
    }

    func callAsFunction(_ x: B.Value) -> B.Value {
        let y = conv2(conv1(x))
        return backend.activate(backend.binary(conv3(y), .add, x), .gelu)
    }
}

/// `PatchMerging`: NCHW in, tokens `[B, H' * W', out]` out. Its depthwise convolution has
/// stride 1 when `out` is 320, 448 or 576 (the reference's rule, which keeps the last stage at
/// 64 x 64), else 2.
struct PatchMerging<B: Backend>: Sendable {
    let backend: B
    let conv1: Conv2d<B>
    let conv2: Conv2d<B>
    let conv3: Conv2d<B>
    let stride: Int

    init(_ w: Weights<B>, dim: Int, outDim: Int) throws {
        backend = w.backend
        stride = [320, 448, 576].contains(outDim) ? 1 : 2
        conv1 = try conv2dBN(w.scope("conv1"), input: dim, output: outDim, kernel: 1, Conv2dOptions(activation: .gelu))
        conv2 = try conv2dBN(w.scope("conv2"), input: outDim, output: outDim, kernel: 3,
                             Conv2dOptions(stride: stride, padding: 1, groups: outDim, activation: .gelu))
        conv3 = try conv2dBN(w.scope("conv3"), input: outDim, output: outDim, kernel: 1)
    }

    func callAsFunction(_ x: B.Value) -> B.Value {
        let x = conv3(conv2(conv1(x)))
        let shape = backend.shape(x)
        return backend.permute(backend.reshape(x, [shape[0], shape[1], shape[2] * shape[3]]), [0, 2, 1])
    }
}

/// `Attention` of tiny_vit_sam.py: LayerNorm, then multi-head attention within one window
/// with a learned bias per head and per (|dy|, |dx|) offset.
struct TinyViTAttention<B: Backend>: Sendable {
    let backend: B
    let heads: Int
    let keyDim: Int
    let norm: LayerNorm<B>
    let qkv: Linear<B>
    let proj: Linear<B>
    /// `attention_biases[:, attention_bias_idxs]`: `[heads, N, N]`, built once at load.
    let bias: B.Value

    init(_ w: Weights<B>, dim: Int, heads: Int, window: Int) throws {
        backend = w.backend
        self.heads = heads
        keyDim = dim / heads
        norm = try LayerNorm(w.scope("norm"), channels: dim, eps: 1e-5)
        qkv = try Linear(w.scope("qkv"), input: dim, output: 3 * dim)
        proj = try Linear(w.scope("proj"), input: dim, output: dim)
        let table = try w.host("attention_biases", [heads, window * window])
        // The reference numbers offsets in order of first appearance over all (query, key)
        // pairs in row-major order; the first query, (0, 0), already meets every offset
        // (dy, dx) in row-major order, so offset (dy, dx) has index dy * window + dx.
        let n = window * window
        let values = table.toArray()
        var bias = [Float](repeating: 0, count: heads * n * n)
        for h in 0..<heads {
            for i in 0..<n {
                for j in 0..<n {
                    let dy = abs(i / window - j / window), dx = abs(i % window - j % window)
                    bias[(h * n + i) * n + j] = values[h * n + dy * window + dx]
                }
            }
        }
        self.bias = backend.upload(Tensor(shape: [heads, n, n], values: bias))
    }

    /// `x`: `[B, N, C]` tokens of `B` windows.
    func callAsFunction(_ x: B.Value) -> B.Value {
        let shape = backend.shape(x)
        let (batch, tokens) = (shape[0], shape[1])
        // qkv.view(B, N, heads, -1).split([key, key, d], dim=3): q, k, v interleave per head.
        let qkv = backend.permute(backend.reshape(self.qkv(norm(x)), [batch, tokens, heads, 3 * keyDim]), [0, 2, 1, 3])
        let q = backend.slice(qkv, dim: 3, 0..<keyDim)
        let k = backend.slice(qkv, dim: 3, keyDim..<2 * keyDim)
        let v = backend.slice(qkv, dim: 3, 2 * keyDim..<3 * keyDim)
        let out = backend.attention(q: q, k: k, v: v, AttentionOptions(scale: 1 / Float(keyDim).squareRoot(), bias: bias))
        return proj(out)
    }
}

/// `Mlp` of tiny_vit_sam.py: LayerNorm, fc1, GELU, fc2.
struct TinyViTMlp<B: Backend>: Sendable {
    let backend: B
    let norm: LayerNorm<B>
    let fc1: Linear<B>
    let fc2: Linear<B>

    init(_ w: Weights<B>, dim: Int) throws {
        backend = w.backend
        let hidden = try w.requireShape("fc1.weight", rank: 2)[0]
        norm = try LayerNorm(w.scope("norm"), channels: dim, eps: 1e-5)
        fc1 = try Linear(w.scope("fc1"), input: dim, output: hidden)
        fc2 = try Linear(w.scope("fc2"), input: hidden, output: dim)
    }

    func callAsFunction(_ x: B.Value) -> B.Value {
        fc2(fc1(norm(x), activation: .gelu))
    }
}

/// `TinyViTBlock`: windowed attention (zero-padded to whole windows), a depthwise 3x3
/// `local_conv`, and the MLP, on tokens `[B, H * W, C]`.
struct TinyViTBlock<B: Backend>: Sendable {
    let backend: B
    let resolution: (h: Int, w: Int)
    let window: Int
    let attn: TinyViTAttention<B>
    let localConv: Conv2d<B>
    let mlp: TinyViTMlp<B>

    init(_ w: Weights<B>, dim: Int, resolution: (h: Int, w: Int)) throws {
        backend = w.backend
        self.resolution = resolution
        let biases = try w.requireShape("attn.attention_biases", rank: 2)
        window = Int(Double(biases[1]).squareRoot().rounded())
        guard biases[0] > 0, dim % biases[0] == 0, window * window == biases[1] else {
            throw SamError.unrecognized(file: w.reader.stateDict.path,
                                        reason: "'\(w.prefix)attn.attention_biases' has shape \(biases); expected [heads, window^2] with heads dividing \(dim)")
        }
        attn = try TinyViTAttention(w.scope("attn"), dim: dim, heads: biases[0], window: window)
        localConv = try conv2dBN(w.scope("local_conv"), input: dim, output: dim, kernel: 3, Conv2dOptions(padding: 1, groups: dim))
        mlp = try TinyViTMlp(w.scope("mlp"), dim: dim)
    }

    func callAsFunction(_ x: B.Value) -> B.Value {
        let (height, width) = resolution
        let channels = backend.shape(x)[2]
        var attended: B.Value
        if height == window && width == window {
            attended = attn(x)
        } else {
            let (windows, padded) = backend.windowPartition(backend.reshape(x, [1, height, width, channels]), size: window)
            let out = attn(backend.reshape(windows, [backend.shape(windows)[0], window * window, channels]))
            attended = backend.windowUnpartition(backend.reshape(out, [backend.shape(windows)[0], window, window, channels]),
                                                 size: window, padded: padded, original: (height, width))
            attended = backend.reshape(attended, [1, height * width, channels])
        }
        var x = backend.binary(x, .add, attended)
        // The tokens are the image channels-last: the local convolution reads them in place.
        let image = backend.reshape(x, [1, height, width, channels])
        x = backend.reshape(backend.depthwiseConv2dChannelsLast(image, weight: localConv.weight, bias: localConv.bias, localConv.options),
                            [1, height * width, channels])
        return backend.binary(x, .add, mlp(x))
    }
}

/// `TinyViT` as MobileSAM builds it for 1024x1024 input, with its SAM neck.
public struct TinyViT<B: Backend>: Sendable {
    let backend: B
    public let embedDims: [Int]
    let patchEmbed: TinyViTPatchEmbed<B>
    let convBlocks: [MBConv<B>]
    let stages: [(blocks: [TinyViTBlock<B>], resolution: (h: Int, w: Int))]
    let downsamples: [PatchMerging<B>]
    let neck: Neck<B>

    init(_ w: Weights<B>, imageSize: Int) throws {
        backend = w.backend
        let layers = w.count("layers")
        guard layers >= 2 else { throw SamError.unrecognized(file: w.reader.stateDict.path, reason: "TinyViT needs at least 2 '\(w.prefix)layers.*'; found \(layers)") }
        // Stage widths: the patch embedding's output, then each patch merging's output.
        var dims = [try w.requireShape("patch_embed.seq.2.c.weight", rank: 4)[0]]
        for i in 1..<layers {
            dims.append(try w.requireShape("layers.\(i - 1).downsample.conv1.c.weight", rank: 4)[0])
        }
        embedDims = dims
        patchEmbed = try TinyViTPatchEmbed(w.scope("patch_embed"), embedDim: dims[0])
        var resolution = (h: imageSize / 4, w: imageSize / 4)
        let first = w.scope("layers.0")
        convBlocks = try (0..<first.count("blocks")).map { try MBConv(first.scope("blocks.\($0)"), dim: dims[0]) }
        var downsamples = [try PatchMerging(first.scope("downsample"), dim: dims[0], outDim: dims[1])]
        var stages: [(blocks: [TinyViTBlock<B>], resolution: (h: Int, w: Int))] = []
        for i in 1..<layers {
            resolution = downsamples[i - 1].stride == 2 ? ((resolution.h + 1) / 2, (resolution.w + 1) / 2) : resolution
            let layer = w.scope("layers.\(i)")
            let blocks = try (0..<layer.count("blocks")).map { try TinyViTBlock(layer.scope("blocks.\($0)"), dim: dims[i], resolution: resolution) }
            stages.append((blocks, resolution))
            if i + 1 < layers { downsamples.append(try PatchMerging(layer.scope("downsample"), dim: dims[i], outDim: dims[i + 1])) }
        }
        self.stages = stages
        self.downsamples = downsamples
        // The classifier head is trained with TinyViT but unused by SAM; the published file keeps it.
        for name in ["norm_head.weight", "norm_head.bias", "head.weight", "head.bias"] { w.ignore(name) }
        neck = try Neck(w.scope("neck"), input: dims[layers - 1])
    }

    /// `x`: the normalized, padded image `[1, 3, 1024, 1024]`.
    func callAsFunction(_ x: B.Value) -> B.Value {
        var image = patchEmbed(x)
        for block in convBlocks { image = block(image) }
        var tokens = downsamples[0](image)
        for (i, stage) in stages.enumerated() {
            for block in stage.blocks { tokens = block(tokens) }
            if i + 1 < downsamples.count {
                let (h, w) = stage.resolution, channels = backend.shape(tokens)[2]
                tokens = downsamples[i + 1](backend.reshape(backend.permute(tokens, [0, 2, 1]), [1, channels, h, w]))
            }
        }
        let (h, w) = stages[stages.count - 1].resolution, channels = backend.shape(tokens)[2]
        let features = backend.reshape(backend.permute(tokens, [0, 2, 1]), [1, channels, h, w])
        return neck(features)
    }

    var summary: String {
        "TinyViT, widths \(embedDims), depths \([convBlocks.count] + stages.map(\.blocks.count)), heads \(stages.map { $0.blocks.first?.attn.heads ?? 0 }), windows \(stages.map { $0.blocks.first?.window ?? 0 })"
    }
}
