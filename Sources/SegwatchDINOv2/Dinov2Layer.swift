// Ports transformers 5.24 `Dinov2Layer` (models/dinov2/modeling_dinov2.py; the registers model's
// layer is the same): pre-LayerNorm self-attention and feed-forward (`Dinov2MLP`, or
// `Dinov2SwiGLUFFN` for ViT-g), each scaled per channel by a LayerScale before its residual.
//
//     x = x + layer_scale1(attention(norm1(x)))
//     x = x + layer_scale2(mlp(norm2(x)))
//
// The LayerScales are folded into the linear before them at load (`diag(lambda) W`,
// `lambda * b`), so that each residual add stays fused with its product.
import SegwatchNN
import SegwatchTensor

struct Dinov2Layer<B: Backend>: Sendable {
    let backend: B
    let norm1: LayerNorm<B>
    let norm2: LayerNorm<B>
    /// `attention.attention.{query,key,value}` stacked, `[3D, D]` and `[3D]`: one product.
    let qkvWeight: B.Value
    let qkvBias: B.Value?
    /// `attention.output.dense` times `layer_scale1.lambda1`.
    let output: Linear<B>
    let mlp: FeedForward
    let heads: Int

    enum FeedForward: Sendable {
        /// `fc2(act(fc1(x)))`, fc2 times `layer_scale2.lambda1`.
        case mlp(fc1: Linear<B>, fc2: Linear<B>, activation: Activation)
        /// `down(silu(gate(x)) * up(x))`: gate and up stacked in one `[2H, D]` product, down
        /// times `layer_scale2.lambda1`.
        case swiGLU(gateUp: Linear<B>, down: Linear<B>, hidden: Int)
    }

    init(_ w: Weights<B>, _ config: DINOv2Config) throws {
        backend = w.backend
        let width = config.hiddenSize, hidden = config.mlpHidden
        heads = config.heads
        norm1 = try LayerNorm(w.scope("norm1"), channels: width, eps: config.layerNormEps)
        norm2 = try LayerNorm(w.scope("norm2"), channels: width, eps: config.layerNormEps)
        // The published files keep the names of transformers 4 (`attention.attention.query`);
        // transformers 5 models name them `attention.q_proj` in memory and accept both.
        let legacy = w.shape("attention.attention.query.weight") != nil
        let (q, k, v, o) = legacy
            ? ("attention.attention.query", "attention.attention.key", "attention.attention.value", "attention.output.dense")
            : ("attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.o_proj")
        qkvWeight = backend.linearWeight(backend.upload(concat(try [q, k, v].map { try w.host("\($0).weight", [width, width]) }, dim: 0)))
        qkvBias = config.qkvBias ? backend.upload(concat(try [q, k, v].map { try w.host("\($0).bias", [width]) }, dim: 0)) : nil
        let scale1 = try w.host("layer_scale1.lambda1", [width]), scale2 = try w.host("layer_scale2.lambda1", [width])
        output = try scaledLinear(w.scope(o), input: width, output: width, scale: scale1)
        if config.swiGLU {
            let gateUp: Linear<B>
            if w.shape("mlp.weights_in.weight") != nil {
                // transformers 4 (and the published ViT-g): one `weights_in`, gate rows first.
                gateUp = try Linear(w.scope("mlp.weights_in"), input: width, output: 2 * hidden)
                mlp = .swiGLU(gateUp: gateUp, down: try scaledLinear(w.scope("mlp.weights_out"), input: hidden, output: width, scale: scale2),
                              hidden: hidden)
            } else {
                let parts = try ["mlp.gate_proj", "mlp.up_proj"].map { try (w.host("\($0).weight", [hidden, width]), w.host("\($0).bias", [hidden])) }
                gateUp = Linear(backend: backend, weight: concat(parts.map(\.0), dim: 0), bias: concat(parts.map(\.1), dim: 0))
                mlp = .swiGLU(gateUp: gateUp, down: try scaledLinear(w.scope("mlp.down_proj"), input: hidden, output: width, scale: scale2),
                              hidden: hidden)
            }
        } else {
            mlp = .mlp(fc1: try Linear(w.scope("mlp.fc1"), input: width, output: hidden),
                       fc2: try scaledLinear(w.scope("mlp.fc2"), input: hidden, output: width, scale: scale2),
                       activation: config.activation)
        }
    }

    /// `x [N, T, D]` -> the residual stream after this layer.
    func callAsFunction(_ x: B.Value) -> B.Value {
        let shape = backend.shape(x)
        let (batch, tokens, width) = (shape[0], shape[1], shape[2])
        let qkv = backend.linear(norm1(x), weight: qkvWeight, bias: qkvBias)
        let split = backend.permute(backend.reshape(qkv, [batch, tokens, 3, heads, width / heads]), [2, 0, 3, 1, 4])
        let attended = backend.attention(q: backend.select(split, dim: 0, 0), k: backend.select(split, dim: 0, 1),
                                         v: backend.select(split, dim: 0, 2),
                                         AttentionOptions(scale: 1 / Float(width / heads).squareRoot()))
        let x = output(attended, adding: x)
        switch mlp {
        case let .mlp(fc1, fc2, activation):
            return fc2(fc1(norm2(x), activation: activation), adding: x)
        case let .swiGLU(gateUp, down, hidden):
            let both = gateUp(norm2(x))
            let gate = backend.slice(both, dim: 2, 0..<hidden), up = backend.slice(both, dim: 2, hidden..<(2 * hidden))
            let silu = backend.binary(gate, .multiply, backend.activate(gate, .sigmoid))
            return down(backend.binary(silu, .multiply, up), adding: x)
        }
    }
}

/// The linear `w` (`weight [output, input]`, `bias [output]`) with its outputs multiplied by
/// `scale` (a LayerScale), as one linear.
private func scaledLinear<B: Backend>(_ w: Weights<B>, input: Int, output: Int, scale: Tensor) throws -> Linear<B> {
    let weight = try w.host("weight", [output, input]), bias = try w.host("bias", [output])
    let column = scale.reshaped([output, 1])
    return Linear(backend: w.backend, weight: SegwatchTensor.binary(weight, .multiply, column),
                  bias: SegwatchTensor.binary(bias, .multiply, scale))
}
