// The learned USE head: pooled CLIP patch features mapped into the text space.
import Foundation
import SegwatchCheckpoint
import SegwatchTensor

/// `proj(norm(x))`: an optional LayerNorm over the pooled feature, then a linear map into the
/// text embedding space. Loaded from a `.safetensors` (or `torch.save`) file holding:
///
/// | tensor | shape | |
/// |---|---|---|
/// | `proj.weight` | `[D_text, D_in]` | required |
/// | `proj.bias` | `[D_text]` | optional |
/// | `norm.weight`, `norm.bias` | `[D_in]` each | optional, both or neither; eps 1e-5 |
///
/// `D_in` is the CLIP feature width (the model's embed dim); anything else in the file is refused.
public struct SegmentHead: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let norm: (weight: Tensor, bias: Tensor)?
    public static let eps: Float = 1e-5

    public var inputDimension: Int { weight.shape[1] }
    public var outputDimension: Int { weight.shape[0] }

    public init(weight: Tensor, bias: Tensor? = nil, norm: (weight: Tensor, bias: Tensor)? = nil) {
        self.weight = weight
        self.bias = bias
        self.norm = norm
    }

    public init(contentsOf path: String) throws(PipelineError) {
        let file: StateDict
        do { file = try StateDict.load(path) } catch { throw .unusable(path: path, reason: "not a segment head: \(error)") }
        let expected = "proj.weight [D_text, D_in], optional proj.bias [D_text], optional norm.weight and norm.bias [D_in]"
        func fail(_ reason: String) -> PipelineError { .unusable(path: path, reason: "\(reason); a segment head holds \(expected)") }
        let known: Set = ["proj.weight", "proj.bias", "norm.weight", "norm.bias"]
        if let stranger = file.names.first(where: { !known.contains($0) }) { throw fail("unexpected tensor '\(stranger)'") }
        guard let entry = file.entries["proj.weight"] else { throw fail("no proj.weight") }
        guard entry.shape.count == 2, entry.shape.allSatisfy({ $0 > 0 }) else { throw fail("proj.weight is \(entry.shape)") }
        let (output, input) = (entry.shape[0], entry.shape[1])
        func load(_ name: String, _ shape: [Int]) throws(PipelineError) -> Tensor? {
            guard let entry = file.entries[name] else { return nil }
            guard entry.shape == shape else { throw fail("\(name) is \(entry.shape), expected \(shape)") }
            do { return try file.tensor(name, shape: shape).contiguous() } catch { throw fail("\(name): \(error)") }
        }
        let weight = try load("proj.weight", [output, input])!
        let bias = try load("proj.bias", [output])
        let normWeight = try load("norm.weight", [input]), normBias = try load("norm.bias", [input])
        guard (normWeight == nil) == (normBias == nil) else { throw fail("norm.weight and norm.bias come together") }
        guard (weight.toArray() + (bias?.toArray() ?? []) + (normWeight?.toArray() ?? []) + (normBias?.toArray() ?? [])).allSatisfy(\.isFinite) else {
            throw fail("a value is not finite")
        }
        self.init(weight: weight, bias: bias, norm: normWeight.map { ($0, normBias!) })
    }

    /// The head on pooled features, `[N, inputDimension]` -> `[N, outputDimension]`.
    public func callAsFunction(_ pooled: Tensor) -> Tensor {
        let x = norm.map { layerNorm(pooled, weight: $0.weight, bias: $0.bias, eps: Self.eps) } ?? pooled
        return linear(x, weight: weight, bias: bias)
    }
}
