// Ports the pre-LayerNorm transformer block both towers are made of: transformers'
// `CLIPEncoderLayer` and open_clip's `ResidualAttentionBlock`, and the ClearCLIP variant of the
// last block that gives dense patch features.
import SegwatchNN
import SegwatchTensor

/// `x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))`, `mlp = fc2(act(fc1(.)))`.
public struct ResidualAttentionBlock<B: Backend>: Sendable {
    let backend: B
    let norm1: LayerNorm<B>
    let norm2: LayerNorm<B>
    /// q, k and v stacked, `[3W, W]` and `[3W]`: one product for all three.
    let qkvWeight: B.Value
    let qkvBias: B.Value
    let outProj: Linear<B>
    let fc1: Linear<B>
    let fc2: Linear<B>
    let heads: Int
    let activation: Activation

    init(_ w: Weights<B>, _ keys: CLIPKeys.Block, _ tower: CLIPTowerConfig, activation: Activation, eps: Float) throws {
        backend = w.backend
        let width = tower.width
        norm1 = try LayerNorm(w.scope(keys.norm1), channels: width, eps: eps)
        norm2 = try LayerNorm(w.scope(keys.norm2), channels: width, eps: eps)
        switch keys.qkv {
        case let .separate(q, k, v):
            let parts = try [q, k, v].map { try (w.host("\($0).weight", [width, width]), w.host("\($0).bias", [width])) }
            qkvWeight = backend.linearWeight(backend.upload(concat(parts.map(\.0), dim: 0)))
            qkvBias = backend.upload(concat(parts.map(\.1), dim: 0))
        case let .fused(weight, bias):
            qkvWeight = backend.linearWeight(try w(weight, [3 * width, width]))
            qkvBias = try w(bias, [3 * width])
        }
        outProj = try Linear(w.scope(keys.outProj), input: width, output: width)
        fc1 = try Linear(w.scope(keys.fc1), input: width, output: tower.mlpWidth)
        fc2 = try Linear(w.scope(keys.fc2), input: tower.mlpWidth, output: width)
        heads = tower.heads
        self.activation = activation
    }

    /// q, k, v as `[B, heads, T, head dim]` views of one product.
    private func projections(_ x: B.Value) -> (q: B.Value, k: B.Value, v: B.Value) {
        let shape = backend.shape(x)
        let (batch, tokens, width) = (shape[0], shape[1], shape[2])
        let qkv = backend.linear(x, weight: qkvWeight, bias: qkvBias)
        let split = backend.permute(backend.reshape(qkv, [batch, tokens, 3, heads, width / heads]), [2, 0, 3, 1, 4])
        return (backend.select(split, dim: 0, 0), backend.select(split, dim: 0, 1), backend.select(split, dim: 0, 2))
    }

    private func scale(_ x: B.Value) -> Float {
        1 / Float(backend.shape(x)[2] / heads).squareRoot()
    }

    /// `x [B, T, W]`; `causal` masks later positions (the text tower).
    public func callAsFunction(_ x: B.Value, causal: Bool) -> B.Value {
        let (q, k, v) = projections(norm1(x))
        let attended = backend.attention(q: q, k: k, v: v, AttentionOptions(scale: scale(x), causal: causal))
        let x = outProj(attended, adding: x)
        return fc2(fc1(norm2(x), activation: activation), adding: x)
    }

    /// The last block as ClearCLIP runs it (`clearclip_last_block`): query-query attention,
    /// `softmax(q q^T / sqrt(d)) v`, and the output projection; no residual, no MLP.
    public func clearCLIP(_ x: B.Value) -> B.Value {
        let (q, _, v) = projections(norm1(x))
        return outProj(backend.attention(q: q, k: q, v: v, AttentionOptions(scale: scale(x))))
    }
}

/// The blocks of one tower, `container.0`, `container.1`, ... under `w`; the file must hold
/// exactly as many as the configuration says.
func loadBlocks<B: Backend>(_ w: Weights<B>, container: String, _ keys: CLIPKeys.Block, _ tower: CLIPTowerConfig,
                            _ config: CLIPConfig) throws -> [ResidualAttentionBlock<B>] {
    let found = w.count(container)
    guard found == tower.layers else {
        throw CLIPError.unrecognized(path: w.reader.stateDict.path,
                                     reason: "the configuration says \(tower.layers) blocks under '\(w.prefix)\(container)', the weights hold \(found)")
    }
    return try (0..<tower.layers).map { i in
        try ResidualAttentionBlock(w.scope(container).scope("\(i)"), keys, tower, activation: config.activation, eps: config.layerNormEps)
    }
}
