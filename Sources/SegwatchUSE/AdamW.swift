// torch.optim.AdamW (torch 2.15, the single-tensor path, foreach=False, amsgrad off), with weight
// decay on chosen parameters only: the optimizer the USE head is trained with.
import Foundation
import SegwatchTensor

public struct AdamW: Sendable {
    // Doubles, as torch's Python floats: its float32 step uses 1 - beta1 and the bias
    // corrections computed in double.
    public var learningRate: Double
    public var beta1 = 0.9
    public var beta2 = 0.999
    public var eps = 1e-8
    public var weightDecay: Double
    /// The parameters weight decay applies to (the head's `proj.weight`).
    public var decayed: Set<String>
    /// Steps taken, and each parameter's moment estimates.
    public var step = 0
    public var expAvg: [String: [Float]] = [:]
    public var expAvgSq: [String: [Float]] = [:]

    public init(learningRate: Double, weightDecay: Double, decayed: Set<String>) {
        (self.learningRate, self.weightDecay, self.decayed) = (learningRate, weightDecay, decayed)
    }

    /// One step on every parameter of `head` with a gradient, the moments starting at zero on
    /// the first.
    public mutating func update(_ head: inout UseHead, gradients: [String: Tensor]) {
        step += 1
        let bias1 = 1 - Foundation.pow(beta1, Double(step)), bias2 = 1 - Foundation.pow(beta2, Double(step))
        let stepSize = Float(learningRate / bias1), bias2Root = Float(bias2.squareRoot())
        let (weight1, keep2, weight2, eps) = (Float(1 - beta1), Float(beta2), Float(1 - beta2), Float(self.eps))
        for (name, gradient) in gradients {
            guard let parameter = head.parameters[name]?.contiguous() else { continue }
            let count = parameter.count, grad = gradient.contiguous()
            precondition(grad.count == count, "AdamW: \(name)'s gradient has \(grad.count) values for \(count)")
            // Taken out of the dictionaries while updated, so that they are not copied.
            var m = expAvg.removeValue(forKey: name) ?? [Float](repeating: 0, count: count)
            var v = expAvgSq.removeValue(forKey: name) ?? [Float](repeating: 0, count: count)
            // New storage: a copy of the head taken before the step keeps its values.
            let updated = Tensor(uninitialized: parameter.shape)
            let decay = decayed.contains(name) ? Float(1 - learningRate * weightDecay) : 1
            let (p, g, out) = (parameter.pointer, grad.pointer, updated.pointer)
            m.withUnsafeMutableBufferPointer { m in
                v.withUnsafeMutableBufferPointer { v in
                    let (m, v) = (m.baseAddress!, v.baseAddress!)
                    parallelFor(count, grain: 1 << 15) { range in
                        for i in range {
                            // param.mul_(1 - lr wd); exp_avg.lerp_(grad, 1 - beta1);
                            // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
                            // param.addcdiv_(exp_avg, exp_avg_sq.sqrt() / sqrt(bc2) + eps, -lr / bc1).
                            m[i] += weight1 * (g[i] - m[i])
                            v[i] = v[i] * keep2 + weight2 * g[i] * g[i]
                            let denominator = v[i].squareRoot() / bias2Root + eps
                            out[i] = p[i] * decay + -stepSize * (m[i] / denominator)
                        }
                    }
                }
            }
            head.parameters[name] = updated
            expAvg[name] = m
            expAvgSq[name] = v
        }
    }
}
