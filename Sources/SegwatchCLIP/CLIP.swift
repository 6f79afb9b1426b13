// Ports the CLIP model of its published layouts (transformers' `CLIPModel`, open_clip's
// `CLIP`, OpenAI's `CLIP`): the two towers, loaded from a model folder or file unchanged.
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

    /// Loads a model folder, transformers (`config.json` + `model.safetensors` or
    /// `pytorch_model.bin`) or open_clip (`open_clip_config.json` + `open_clip_model.safetensors`
    /// or `open_clip_pytorch_model.bin`), or OpenAI's file (`ViT-B-16.pt`). Every tensor must be
    /// used and have its expected shape.
    public static func load(_ model: String, backend: B) throws -> CLIP {
        let config = try CLIPConfig.load(model)
        let path = try CLIPFiles.weightsFile(model, layout: config.layout)
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

extension CLIP {
    /// Throws when a `height x width` picture's largest activation (a token per patch, the
    /// MLP's inner width) would not fit one of the backend's values (a device's largest
    /// allocation): an error naming the sizes before any work, instead of a failure inside it.
    public func checkFits(height: Int, width: Int) throws(CLIPError) {
        let tokens = 1 + (height / config.patchSize) * (width / config.patchSize)
        let bytes = tokens * max(config.vision.mlpWidth, 3 * config.vision.width) * 4
        let limit = vision.backend.maximumValueBytes
        guard bytes > limit else { return }
        throw .invalidInput("a \(width)x\(height) picture needs \(bytes >> 20) MB for CLIP's largest activation "
                            + "(\(tokens) tokens); the device holds at most \(limit >> 20) MB in one buffer")
    }
}

/// The files of a model, found without loading the model.
public enum CLIPFiles {
    /// The weights file of a model: the model itself when it is one file; safetensors where a
    /// folder has both formats.
    public static func weightsFile(_ model: String, layout: CLIPConfig.Layout) throws(CLIPError) -> String {
        if layout == .openAI { return model }
        let names = layout == .transformers
            ? ["model.safetensors", "pytorch_model.bin"]
            : ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        let folder = URL(fileURLWithPath: model)
        guard let path = names.map({ folder.appendingPathComponent($0).path }).first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw .unrecognized(path: model, reason: "no weights: expected \(names.joined(separator: " or ")) beside the \(layout.rawValue) configuration")
        }
        return path
    }

    /// The content digest of a model as the text side sees it: its configuration, its weights
    /// and its vocabulary files (none in open_clip folders and OpenAI files, which use the BPE
    /// file segwatch carries). Without reading the weights again when `memo` remembers them.
    public static func digest(_ model: String, memo: URL? = nil) throws -> UInt64 {
        let config = try CLIPConfig.load(model)
        if config.layout == .openAI {
            var hasher = XXH64()
            hasher.update("openai")
            hasher.update(try fileDigest(model, memo: memo))
            return hasher.digest()
        }
        let directory = model
        let folder = URL(fileURLWithPath: directory)
        var files = [config.layout == .transformers ? "config.json" : "open_clip_config.json"]
        files.append(URL(fileURLWithPath: try weightsFile(directory, layout: config.layout)).lastPathComponent)
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
