// The head's training objective and its gradients, written out: the reference's cross-entropy
// over the scaled cosines of each segment with the batch's descriptions (`F.cross_entropy`,
// mean over the batch), differentiated by hand through `head_forward`. Products in float32,
// the rest in double (see `UseHead.Forward`).
import Foundation
import SegwatchTensor

/// The loss of one batch and what it comes from.
public struct UseHeadLoss: Sendable {
    /// `[B, E]`, `[B, U]`, and the mean cross-entropy.
    public var z: Tensor
    public var logits: Tensor
    public var loss: Float
    /// d loss / d parameter, for every parameter.
    public var gradients: [String: Tensor]
}

extension UseHead {
    /// The loss of a batch against `text` `[U, E]` (unit rows) with `target[b]` the row of
    /// segment b's description, and every parameter's gradient.
    public func loss(_ input: UseHeadInput, text: Tensor, target: [Int]) throws(USEError) -> UseHeadLoss {
        try input.validate(shape)
        let batch = input.count, embed = shape.embed, width = shape.features
        guard text.rank == 2, text.shape[1] == embed else { throw .mismatch("the text embeddings are \(text.shape); expected [U, \(embed)]") }
        let texts = text.shape[0]
        guard target.count == batch, target.allSatisfy({ (0..<texts).contains($0) }) else {
            throw .mismatch("\(target.count) targets for \(batch) segments, each a row of the \(texts) texts")
        }
        let forward = forward(input)
        // logits = s cos, s = exp(min(logit_scale, ln 100)).
        let logitScale = parameter("logit_scale").toArray()[0]
        let scale = Double(Foundation.exp(min(logitScale, Self.maximumLogitScale)))
        let textMatrix = text.contiguous(), z = forward.zTensor
        let cosines = linear(z, weight: textMatrix, bias: nil).toArray().map { Double($0) }
        let logits = cosines.map { scale * $0 }
        // Cross-entropy: mean of -log softmax at the target; d logits = (softmax - onehot) / B.
        var loss = 0.0
        var dLogits = [Double](repeating: 0, count: batch * texts)
        for b in 0..<batch {
            let row = logits[(b * texts)..<((b + 1) * texts)]
            let top = row.max()!, sum = row.reduce(0) { $0 + Foundation.exp($1 - top) }
            loss -= row[b * texts + target[b]] - top - Foundation.log(sum)
            for u in 0..<texts { dLogits[b * texts + u] = Foundation.exp(logits[b * texts + u] - top) / sum / Double(batch) }
            dLogits[b * texts + target[b]] -= 1 / Double(batch)
        }
        loss /= Double(batch)
        var gradients: [String: Tensor] = [:]
        // d logit_scale = s sum(dLogits * cos) where the clamp lets it through (torch's
        // clamp_max passes the gradient where the input is at most the bound).
        let dScale = zip(dLogits, cosines).reduce(0.0) { $0 + $1.0 * $1.1 } * scale
        gradients["logit_scale"] = Tensor(shape: [], values: [logitScale <= Self.maximumLogitScale ? Float(dScale) : 0])
        // dz = s dLogits text; z = y / |y| -> dy = (dz - z (z . dz)) / |y|.
        let dz = matmul(Tensor(shape: [batch, texts], values: dLogits.map { Float(scale * $0) }), textMatrix).toArray()
        var dy = [Double](repeating: 0, count: batch * embed)
        for b in 0..<batch {
            let row = b * embed
            let along = (0..<embed).reduce(0.0) { $0 + forward.z[row + $1] * Double(dz[row + $1]) }
            for e in 0..<embed { dy[row + e] = (Double(dz[row + e]) - forward.z[row + e] * along) / forward.norms[b] }
        }
        // y = u + x W^T + bias: d bias = sum_b dy, dW = dy^T x, dx = dy W.
        gradients["proj.bias"] = Tensor(shape: [embed], values: (0..<embed).map { e in Float((0..<batch).reduce(0.0) { $0 + dy[$1 * embed + e] }) })
        let dyTensor = Tensor(shape: [batch, embed], values: dy.map { Float($0) })
        gradients["proj.weight"] = matmul(dyTensor.permuted([1, 0]).contiguous(), forward.features)
        let dxTensor = matmul(dyTensor, parameter("proj.weight")), dx = dxTensor.pointer
        // Each term of x: scale * (xhat * w + b), in its columns.
        var scaleGradients: [String: [Float]] = ["clip.scale": [Float](repeating: 0, count: shape.clipLevels),
                                                 "dino.scale": [Float](repeating: 0, count: shape.dinoLevels), "cls.scale": [0, 0]]
        for (index, term) in terms(input).enumerated() {
            let s = Double(parameter(term.scale).toArray()[term.slot])
            let xhat = forward.normalized[index], columns = term.x.shape[1]
            let weight = parameter(term.prefix + ".weight").toArray(), bias = parameter(term.prefix + ".bias").toArray()
            // Per column, over the batch: columns split between the threads.
            var dWeight = [Double](repeating: 0, count: columns), dBias = [Double](repeating: 0, count: columns)
            var dScale = [Double](repeating: 0, count: columns)
            let weights = weight.map { Double($0) }, biases = bias.map { Double($0) }
            dWeight.withUnsafeMutableBufferPointer { dWeight in
                dBias.withUnsafeMutableBufferPointer { dBias in
                    dScale.withUnsafeMutableBufferPointer { dScale in
                        parallelFor(columns, grain: 64) { range in
                            for b in 0..<batch {
                                let gradient = dx + b * width + term.column, h = b * columns
                                for j in range {
                                    let g = Double(gradient[j])
                                    let n = Double(xhat[h + j])
                                    dScale[j] += g * (n * weights[j] + biases[j])
                                    dWeight[j] += s * g * n
                                    dBias[j] += s * g
                                }
                            }
                        }
                    }
                }
            }
            let dS = dScale.reduce(0, +)
            scaleGradients[term.scale]![term.slot] = Float(dS)
            gradients[term.prefix + ".weight"] = Tensor(shape: [columns], values: dWeight.map { Float($0) })
            gradients[term.prefix + ".bias"] = Tensor(shape: [columns], values: dBias.map { Float($0) })
        }
        for (name, values) in scaleGradients { gradients[name] = Tensor(shape: [values.count], values: values) }
        withExtendedLifetime(dxTensor) {}
        return UseHeadLoss(z: z, logits: Tensor(shape: [batch, texts], values: logits.map { Float($0) }), loss: Float(loss), gradients: gradients)
    }
}
