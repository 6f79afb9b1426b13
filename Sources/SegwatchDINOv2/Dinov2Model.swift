// Ports transformers 5.24 `Dinov2Model` and `Dinov2WithRegistersModel`: embeddings, the
// encoder's layers (`encoder.layer.N`), and the final `layernorm`. `hidden_states[K]` is the
// residual stream after layer K (0: the embeddings), before the final LayerNorm;
// `last_hidden_state` is the normalized stream after the last layer; `pooler_output` its class
// row. Loaded from a model folder in the transformers layout, unchanged.
import Foundation
import SegwatchCheckpoint
import SegwatchNN
import SegwatchTensor

public struct Dinov2Model<B: Backend>: Sendable {
    public let config: DINOv2Config
    let backend: B
    let embeddings: Dinov2Embeddings<B>
    let layers: [Dinov2Layer<B>]
    let layernorm: LayerNorm<B>
    /// The weights file the model was read from.
    public let weightsPath: String

    /// What one forward pass gives.
    public struct Output: Sendable {
        /// `last_hidden_state` `[N, T, D]`, T = 1 + registers + gh * gw.
        public var last: B.Value
        /// `pooler_output` `[N, D]`: the class row of `last`.
        public var pooled: B.Value
        /// `hidden_states[K]` `[N, T, D]` for each level asked for.
        public var hidden: [Int: B.Value]
        /// The patch grid.
        public var grid: (h: Int, w: Int)
    }

    /// Loads a transformers folder (`config.json`, `model.safetensors` or `pytorch_model.bin`,
    /// optionally `preprocessor_config.json`). Every tensor must be used and have its expected
    /// shape.
    public static func load(_ folder: String, backend: B) throws -> Dinov2Model {
        let config = try DINOv2Config.load(folder)
        let path = try DINOv2Files.weightsFile(folder)
        let reader = WeightReader(try StateDict.load(path))
        let root = Weights(reader: reader, backend: backend)
        let found = root.count("encoder.layer")
        guard found == config.layers else {
            throw DINOv2Error.unrecognized(path: path, reason: "config.json says \(config.layers) layers, the weights hold \(found) under 'encoder.layer'")
        }
        let model = Dinov2Model(
            config: config, backend: backend, embeddings: try Dinov2Embeddings(root.scope("embeddings"), config),
            layers: try (0..<config.layers).map { try Dinov2Layer(root.scope("encoder.layer.\($0)"), config) },
            layernorm: try LayerNorm(root.scope("layernorm"), channels: config.hiddenSize, eps: config.layerNormEps),
            weightsPath: path)
        try reader.checkAllUsed()
        return model
    }

    /// The image tokens of `pixels` `[N, 3, H, W]` (normalized; sides multiples of the patch),
    /// with `hidden_states[K]` for each K in `levels` (0...layers).
    public func callAsFunction(_ pixels: B.Value, levels: Set<Int> = []) throws(DINOv2Error) -> Output {
        let shape = backend.shape(pixels), patch = config.patchSize
        guard shape.count == 4, shape[1] == 3, shape[2] >= patch, shape[3] >= patch, shape[2] % patch == 0, shape[3] % patch == 0 else {
            throw .invalidInput("DINOv2 takes [N, 3, H, W] pixels with H and W multiples of the patch size \(patch), not \(shape)")
        }
        if let level = levels.first(where: { !(0...config.layers).contains($0) }) {
            throw .invalidInput("level \(level): this DINOv2 has hidden states 0...\(config.layers) (0 is the embeddings, K after layer K)")
        }
        var (x, grid) = embeddings(pixels)
        var hidden: [Int: B.Value] = levels.contains(0) ? [0: x] : [:]
        for (index, layer) in layers.enumerated() {
            x = layer(x)
            if levels.contains(index + 1) { hidden[index + 1] = x }
        }
        let last = layernorm(x)
        return Output(last: last, pooled: backend.contiguous(backend.select(last, dim: 1, 0)), hidden: hidden, grid: grid)
    }
}

/// The files of a DINOv2 folder, found without loading the model.
public enum DINOv2Files {
    static let weightNames = ["model.safetensors", "pytorch_model.bin"]

    /// The weights file: safetensors where a folder has both formats.
    public static func weightsFile(_ folder: String) throws(DINOv2Error) -> String {
        let url = URL(fileURLWithPath: folder)
        guard let path = weightNames.map({ url.appendingPathComponent($0).path }).first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw .unrecognized(path: folder, reason: "no weights: expected \(weightNames.joined(separator: " or ")) beside config.json")
        }
        return path
    }

    /// The content digest of a model: its configuration, preprocessing and weights files.
    /// Without reading the weights again when `memo` remembers them.
    public static func digest(_ folder: String, memo: URL? = nil) throws -> UInt64 {
        let url = URL(fileURLWithPath: folder)
        var files = ["config.json", URL(fileURLWithPath: try weightsFile(folder)).lastPathComponent]
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("preprocessor_config.json").path) {
            files.append("preprocessor_config.json")
        }
        var hasher = XXH64()
        for name in files {
            hasher.update(name)
            hasher.update(try fileDigest(url.appendingPathComponent(name).path, memo: memo))
        }
        return hasher.digest()
    }
}

extension Dinov2Model {
    /// Throws when a `height x width` picture's largest activation (a token per patch, the
    /// MLP's inner width) would not fit one of the backend's values (a device's largest
    /// allocation): an error naming the sizes before any work, instead of a failure inside it.
    public func checkFits(height: Int, width: Int) throws(DINOv2Error) {
        let tokens = 1 + config.registers + (height / config.patchSize) * (width / config.patchSize)
        let bytes = tokens * max(config.mlpHidden * (config.swiGLU ? 2 : 1), 3 * config.hiddenSize) * 4
        let limit = backend.maximumValueBytes
        guard bytes > limit else { return }
        throw .invalidInput("a \(width)x\(height) picture needs \(bytes >> 20) MB for DINOv2's largest activation "
                            + "(\(tokens) tokens); the device holds at most \(limit >> 20) MB in one buffer")
    }
}
