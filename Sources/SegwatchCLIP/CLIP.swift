// Ports the CLIP model of both published layouts (transformers' `CLIPModel`, open_clip's
// `CLIP`): the two towers, loaded from a model folder unchanged.
import Foundation
import SegwatchCheckpoint
import SegwatchNN
import SegwatchTensor

public struct CLIP<B: Backend>: Sendable {
    public let config: CLIPConfig
    public let vision: VisionTransformer<B>
    public let text: TextTransformer<B>
    /// `logit_scale`, a log: similarities are multiplied by `exp(logitScale)`.
    public let logitScale: Float
    /// The weights file the model was read from.
    public let weightsPath: String

    /// Loads a model folder: transformers (`config.json` + `model.safetensors` or
    /// `pytorch_model.bin`) or open_clip (`open_clip_config.json` + `open_clip_model.safetensors`
    /// or `open_clip_pytorch_model.bin`). Every tensor must be used and have its expected shape.
    public static func load(directory: String, backend: B) throws -> CLIP {
        let config = try CLIPConfig.load(directory: directory)
        let path = try CLIPFolder.weightsFile(directory: directory, layout: config.layout)
        let reader = WeightReader(try StateDict.load(path))
        let root = Weights(reader: reader, backend: backend)
        let keys = CLIPKeys.of(config.layout)
        let vision = try VisionTransformer(root, keys, config)
        let text = try TextTransformer(root, keys, config)
        let logitScale = try root.host("logit_scale", []).toArray()[0]
        keys.ignored.forEach(reader.ignore)
        try reader.checkAllUsed()
        return CLIP(config: config, vision: vision, text: text, logitScale: logitScale, weightsPath: path)
    }
}

/// The files of a model folder, found without loading the model.
public enum CLIPFolder {
    /// The weights file of a model folder: safetensors where the folder has both formats.
    public static func weightsFile(directory: String, layout: CLIPConfig.Layout) throws(CLIPError) -> String {
        let names = layout == .transformers
            ? ["model.safetensors", "pytorch_model.bin"]
            : ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        let folder = URL(fileURLWithPath: directory)
        guard let path = names.map({ folder.appendingPathComponent($0).path }).first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw .unrecognized(path: directory, reason: "no weights: expected \(names.joined(separator: " or ")) beside the \(layout.rawValue) configuration")
        }
        return path
    }

    /// The content digest of a model folder as the text side sees it: its configuration, its
    /// weights and its vocabulary files (none in open_clip folders, which use the BPE file
    /// segwatch carries). Without reading the weights again when `memo` remembers them.
    public static func digest(directory: String, memo: URL? = nil) throws -> UInt64 {
        let config = try CLIPConfig.load(directory: directory)
        let folder = URL(fileURLWithPath: directory)
        var files = [config.layout == .transformers ? "config.json" : "open_clip_config.json"]
        files.append(URL(fileURLWithPath: try weightsFile(directory: directory, layout: config.layout)).lastPathComponent)
        for name in ["vocab.json", "merges.txt"] where FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path) {
            files.append(name)
        }
        var hasher = XXH64()
        for name in files {
            hasher.update(name)
            hasher.update(try fileDigest(folder.appendingPathComponent(name).path, memo: memo))
        }
        return hasher.digest()
    }
}
