// The torch.nn layers the models are built from, reading their weights strictly.
import SegwatchTensor

/// `nn.Linear`: `weight [out, in]`, optional `bias [out]`.
public struct Linear<B: Backend>: Sendable {
    public let backend: B
    public let weight: B.Value
    public let bias: B.Value?

    /// `packed: false` keeps the plain weight, for a layer whose weight is also read as a tensor
    /// (the backend may otherwise keep it only in the form its product reads, `linearWeight`).
    public init(_ w: Weights<B>, input: Int, output: Int, bias: Bool = true, packed: Bool = true) throws {
        backend = w.backend
        let weight = try w("weight", [output, input])
        self.weight = packed ? backend.linearWeight(weight) : weight
        self.bias = bias ? try w("bias", [output]) : nil
    }

    /// A linear whose weights were computed at load (a LayerScale folded in).
    public init(backend: B, weight: Tensor, bias: Tensor?) {
        self.backend = backend
        self.weight = backend.linearWeight(backend.upload(weight))
        self.bias = bias.map { backend.upload($0) }
    }

    public func callAsFunction(_ x: B.Value) -> B.Value {
        backend.linear(x, weight: weight, bias: bias)
    }

    /// `activation(self(x))`, in one pass where the backend can.
    public func callAsFunction(_ x: B.Value, activation: Activation) -> B.Value {
        backend.linear(x, weight: weight, bias: bias, activation: activation)
    }

    /// `residual + self(x)`, in one pass.
    public func callAsFunction(_ x: B.Value, adding residual: B.Value) -> B.Value {
        backend.linear(x, weight: weight, bias: bias, adding: residual)
    }
}

/// `nn.LayerNorm` over the last dimension.
public struct LayerNorm<B: Backend>: Sendable {
    public let backend: B
    public let weight: B.Value
    public let bias: B.Value
    public let eps: Float

    public init(_ w: Weights<B>, channels: Int, eps: Float) throws {
        backend = w.backend
        weight = try w("weight", [channels])
        bias = try w("bias", [channels])
        self.eps = eps
    }

    public func callAsFunction(_ x: B.Value) -> B.Value {
        backend.layerNorm(x, weight: weight, bias: bias, eps: eps)
    }

    /// `self(x + residual)`, in one pass.
    public func callAsFunction(_ x: B.Value, adding residual: B.Value) -> B.Value {
        backend.layerNorm(x, adding: residual, weight: weight, bias: bias, eps: eps)
    }
}

/// `nn.Conv2d` with a square kernel.
public struct Conv2d<B: Backend>: Sendable {
    public let backend: B
    public let weight: B.Value
    public let bias: B.Value?
    public let options: Conv2dOptions

    public init(_ w: Weights<B>, input: Int, output: Int, kernel: Int, bias: Bool = true, _ options: Conv2dOptions = .init()) throws {
        backend = w.backend
        weight = try w("weight", [output, input / options.groups, kernel, kernel])
        self.bias = bias ? try w("bias", [output]) : nil
        self.options = options
    }

    /// A convolution whose weights were computed at load (a BatchNorm folded in).
    public init(backend: B, weight: Tensor, bias: Tensor?, _ options: Conv2dOptions) {
        self.backend = backend
        self.weight = backend.upload(weight)
        self.bias = bias.map { backend.upload($0) }
        self.options = options
    }

    public func callAsFunction(_ x: B.Value) -> B.Value {
        backend.conv2d(x, weight: weight, bias: bias, options)
    }
}

