// Ports segment_anything/modeling/common.py (MLPBlock, LayerNorm2d) and the layers only SAM uses.
import SegwatchNN
import SegwatchTensor

/// `LayerNorm2d`: LayerNorm over the channels of NCHW input, eps 1e-6.
struct LayerNorm2d<B: Backend>: Sendable {
    let backend: B
    let weight: B.Value
    let bias: B.Value
    let eps: Float = 1e-6

    init(_ w: Weights<B>, channels: Int) throws {
        backend = w.backend
        weight = try w("weight", [channels])
        bias = try w("bias", [channels])
    }

    func callAsFunction(_ x: B.Value) -> B.Value {
        backend.layerNorm2d(x, weight: weight, bias: bias, eps: eps)
    }
}

/// `nn.ConvTranspose2d`'s weights with kernel == stride (the mask decoder's 2x upscaling), run
/// as the `Linear` it equals on channels-last input.
struct ConvTranspose2d<B: Backend>: Sendable {
    let backend: B
    let weight: B.Value
    let bias: B.Value
    let stride: Int

    init(_ w: Weights<B>, input: Int, output: Int, stride: Int) throws {
        backend = w.backend
        weight = try w("weight", [input, output, stride, stride])
        bias = try w("bias", [output])
        self.stride = stride
    }

    /// The same map as a `Linear` from a pixel's input channels to its stride x stride
    /// children's outputs, ordered `(ky, kx, output)`: weight `[stride^2 * output, input]`,
    /// prepared as a linear layer's is (packed on the CPU: the bias and the activation are then
    /// applied as the product stores its outputs, not in passes of their own, and the weight
    /// is not packed again at every call; the SAM decoder's upscaling ran at half the rate).
    var childrenLinear: (weight: B.Value, bias: B.Value) {
        let b = backend, s = b.shape(weight)
        let children = stride * stride
        let w = b.reshape(b.contiguous(b.permute(weight, [2, 3, 1, 0])), [children * s[1], s[0]])
        let tiled = b.contiguous(b.expand(b.reshape(bias, [1, s[1]]), [children, s[1]]))
        return (b.linearWeight(w), b.reshape(tiled, [children * s[1]]))
    }
}

/// `MLPBlock`: `lin2(act(lin1(x)))`.
struct MLPBlock<B: Backend>: Sendable {
    let lin1: Linear<B>
    let lin2: Linear<B>
    let activation: Activation

    init(_ w: Weights<B>, embeddingDim: Int, mlpDim: Int, activation: Activation) throws {
        lin1 = try Linear(w.scope("lin1"), input: embeddingDim, output: mlpDim)
        lin2 = try Linear(w.scope("lin2"), input: mlpDim, output: embeddingDim)
        self.activation = activation
    }

    func callAsFunction(_ x: B.Value) -> B.Value {
        lin2(lin1(x, activation: activation))
    }
}

/// The neck both SAM encoders end with: 1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d, all
/// without bias, to `out` channels.
struct Neck<B: Backend>: Sendable {
    let conv0: Conv2d<B>
    let norm1: LayerNorm2d<B>
    let conv2: Conv2d<B>
    let norm3: LayerNorm2d<B>

    init(_ w: Weights<B>, input: Int) throws {
        let output = try w.requireShape("0.weight", rank: 4)[0]
        conv0 = try Conv2d(w.scope("0"), input: input, output: output, kernel: 1, bias: false)
        norm1 = try LayerNorm2d(w.scope("1"), channels: output)
        conv2 = try Conv2d(w.scope("2"), input: output, output: output, kernel: 3, bias: false, Conv2dOptions(padding: 1))
        norm3 = try LayerNorm2d(w.scope("3"), channels: output)
    }

    func callAsFunction(_ x: B.Value) -> B.Value {
        norm3(conv2(norm1(conv0(x))))
    }
}
