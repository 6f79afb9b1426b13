// The hyper-parameters of a CLIP model, read from a published layout: transformers'
// `config.json` (CLIPConfig), open_clip's `open_clip_config.json` (`model_cfg`), or the shapes
// of OpenAI's own checkpoint file as OpenAI's `build_model` (clip/model.py) reads them.
import Foundation
import SegwatchCheckpoint
import SegwatchNN
import SegwatchTensor

/// One transformer tower.
public struct CLIPTowerConfig: Sendable, Equatable {
    public var width: Int
    public var layers: Int
    public var heads: Int
    public var mlpWidth: Int

    public init(width: Int, layers: Int, heads: Int, mlpWidth: Int) {
        self.width = width
        self.layers = layers
        self.heads = heads
        self.mlpWidth = mlpWidth
    }

    public var headDim: Int { width / heads }
}

/// A CLIP model's shapes, activation and image statistics.
public struct CLIPConfig: Sendable, Equatable {
    /// Which published layout the folder holds; it decides the weight names.
    public enum Layout: String, Sendable {
        case transformers
        case openCLIP = "open_clip"
        /// One file of OpenAI's names (their TorchScript `ViT-B-16.pt`, or any state dict
        /// saved from it), the shapes giving the configuration.
        case openAI = "openai"
    }

    public var layout: Layout
    public var vision: CLIPTowerConfig
    public var text: CLIPTowerConfig
    /// The joint embedding size D.
    public var embedDim: Int
    public var patchSize: Int
    /// The native input size (square): the position embedding's grid is `imageSize / patchSize`.
    public var imageSize: Int
    public var contextLength: Int
    public var vocabSize: Int
    public var activation: Activation
    public var layerNormEps: Float
    public var imageMean: [Float]
    public var imageStd: [Float]

    /// OpenAI's image statistics, the default of both layouts.
    public static let openAIMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public static let openAIStd: [Float] = [0.26862954, 0.26130258, 0.27577711]

    public var summary: String {
        "CLIP (\(layout.rawValue)), vision \(vision.layers)x\(vision.width) patch \(patchSize) at \(imageSize), "
            + "text \(text.layers)x\(text.width), D \(embedDim), \(activation.rawValue)"
    }
}

extension CLIPConfig {
    /// Reads the configuration of a model: a folder with `config.json` (transformers) or
    /// `open_clip_config.json` (open_clip), or one OpenAI checkpoint file.
    public static func load(_ path: String) throws(CLIPError) -> CLIPConfig {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue {
            let state: StateDict
            do { state = try StateDict.load(path) } catch {
                throw .unrecognized(path: path, reason: "\(error)")
            }
            return try fromOpenAI(state)
        }
        let directory = path
        let folder = URL(fileURLWithPath: directory)
        let transformers = folder.appendingPathComponent("config.json").path
        let openCLIP = folder.appendingPathComponent("open_clip_config.json").path
        if FileManager.default.fileExists(atPath: transformers) {
            return try fromTransformers(Fields.load(transformers),
                                        preprocessor: folder.appendingPathComponent("preprocessor_config.json").path)
        }
        if FileManager.default.fileExists(atPath: openCLIP) {
            return try fromOpenCLIP(Fields.load(openCLIP))
        }
        guard FileManager.default.fileExists(atPath: directory) else {
            throw .unreadable(path: directory, reason: "no such folder")
        }
        throw .unrecognized(path: directory, reason: "no config.json (transformers layout) or open_clip_config.json (open_clip layout)")
    }

    private static func fromTransformers(_ fields: Fields, preprocessor: String?) throws(CLIPError) -> CLIPConfig {
        let vision = try fields.object("vision_config"), text = try fields.object("text_config")
        func tower(_ f: Fields) throws(CLIPError) -> CLIPTowerConfig {
            let width = try f.int("hidden_size"), heads = try f.int("num_attention_heads")
            guard heads > 0, width % heads == 0 else { throw f.invalid("num_attention_heads", "\(heads) heads do not divide hidden_size \(width)") }
            return CLIPTowerConfig(width: width, layers: try f.int("num_hidden_layers"), heads: heads, mlpWidth: try f.int("intermediate_size"))
        }
        let visionAct = try activation(vision.string("hidden_act", default: "quick_gelu"), vision, key: "hidden_act")
        let textAct = try activation(text.string("hidden_act", default: "quick_gelu"), text, key: "hidden_act")
        guard visionAct == textAct else { throw vision.invalid("hidden_act", "the towers use different activations (\(visionAct) and \(textAct))") }
        var mean = openAIMean, std = openAIStd
        if let preprocessor, FileManager.default.fileExists(atPath: preprocessor) {
            let p = try Fields.load(preprocessor)
            mean = try p.floats("image_mean", count: 3, default: mean)
            std = try p.floats("image_std", count: 3, default: std)
        }
        return CLIPConfig(
            layout: .transformers, vision: try tower(vision), text: try tower(text),
            embedDim: try fields.int("projection_dim"), patchSize: try vision.int("patch_size"),
            imageSize: try vision.int("image_size"), contextLength: try text.int("max_position_embeddings", default: 77),
            vocabSize: try text.int("vocab_size", default: 49408), activation: visionAct,
            layerNormEps: Float(try vision.double("layer_norm_eps", default: 1e-5)), imageMean: mean, imageStd: std)
    }

    private static func fromOpenCLIP(_ root: Fields) throws(CLIPError) -> CLIPConfig {
        let model = try root.object("model_cfg")
        let vision = try model.object("vision_cfg"), text = try model.object("text_cfg")
        let visionWidth = try vision.int("width"), headWidth = try vision.int("head_width", default: 64)
        guard headWidth > 0, visionWidth % headWidth == 0 else {
            throw vision.invalid("head_width", "\(headWidth) does not divide the vision width \(visionWidth)")
        }
        let textWidth = try text.int("width"), textHeads = try text.int("heads", default: 8)
        guard textHeads > 0, textWidth % textHeads == 0 else { throw text.invalid("heads", "\(textHeads) heads do not divide the text width \(textWidth)") }
        let visionRatio = try vision.double("mlp_ratio", default: 4), textRatio = try text.double("mlp_ratio", default: 4)
        var mean = openAIMean, std = openAIStd
        if let preprocess = try? root.object("preprocess_cfg") {
            mean = try preprocess.floats("mean", count: 3, default: mean)
            std = try preprocess.floats("std", count: 3, default: std)
        }
        return CLIPConfig(
            layout: .openCLIP,
            vision: CLIPTowerConfig(width: visionWidth, layers: try vision.int("layers"), heads: visionWidth / headWidth,
                                    mlpWidth: Int(Double(visionWidth) * visionRatio)),
            text: CLIPTowerConfig(width: textWidth, layers: try text.int("layers"), heads: textHeads,
                                  mlpWidth: Int(Double(textWidth) * textRatio)),
            embedDim: try model.int("embed_dim"), patchSize: try vision.int("patch_size"), imageSize: try vision.int("image_size"),
            contextLength: try text.int("context_length", default: 77), vocabSize: try text.int("vocab_size", default: 49408),
            // open_clip's default is erf GELU; OpenAI's weights set quick_gelu.
            activation: try model.bool("quick_gelu", default: false) ? .quickGelu : .gelu,
            layerNormEps: 1e-5, imageMean: mean, imageStd: std)
    }

    /// OpenAI's `build_model`: widths, layers, patch, grid, context and vocabulary from the
    /// tensors' shapes, 64-wide heads, QuickGELU, OpenAI's image statistics.
    static func fromOpenAI(_ state: StateDict) throws(CLIPError) -> CLIPConfig {
        func fail(_ reason: String) -> CLIPError { .unrecognized(path: state.path, reason: reason) }
        func shape(_ key: String, rank: Int) throws(CLIPError) -> [Int] {
            guard let entry = state.entries[key] else {
                if key == "visual.conv1.weight", state.entries["visual.layer1.0.conv1.weight"] != nil {
                    throw fail("a ResNet CLIP (visual.layer1...); segwatch runs the ViT models")
                }
                throw fail("no tensor '\(key)' (OpenAI's CLIP names expected)")
            }
            guard entry.shape.count == rank, entry.shape.allSatisfy({ $0 > 0 }) else { throw fail("'\(key)' has shape \(entry.shape); expected \(rank) positive sizes") }
            return entry.shape
        }
        func blocks(_ prefix: String) -> Int {
            Set(state.names.compactMap { name -> Int? in
                guard name.hasPrefix(prefix) else { return nil }
                return Int(name.dropFirst(prefix.count).prefix { $0 != "." })
            }).count
        }
        func tower(width: Int, prefix: String) throws(CLIPError) -> CLIPTowerConfig {
            let layers = blocks(prefix)
            guard layers > 0 else { throw fail("no blocks under '\(prefix)'") }
            guard width % 64 == 0 else { throw fail("width \(width) is not a multiple of OpenAI's 64-wide heads") }
            let mlp = try shape(prefix + "0.mlp.c_fc.weight", rank: 2)[0]
            return CLIPTowerConfig(width: width, layers: layers, heads: width / 64, mlpWidth: mlp)
        }
        let conv = try shape("visual.conv1.weight", rank: 4)
        let positions = try shape("visual.positional_embedding", rank: 2)[0]
        let grid = Int((Double(positions - 1)).squareRoot().rounded())
        guard grid > 0, grid * grid + 1 == positions else { throw fail("visual.positional_embedding has \(positions) rows; expected a square grid plus the class token") }
        let vision = try tower(width: conv[0], prefix: "visual.transformer.resblocks.")
        let text = try tower(width: try shape("ln_final.weight", rank: 1)[0], prefix: "transformer.resblocks.")
        return CLIPConfig(
            layout: .openAI, vision: vision, text: text, embedDim: try shape("text_projection", rank: 2)[1],
            patchSize: conv[3], imageSize: conv[3] * grid, contextLength: try shape("positional_embedding", rank: 2)[0],
            vocabSize: try shape("token_embedding.weight", rank: 2)[0], activation: .quickGelu,
            layerNormEps: 1e-5, imageMean: openAIMean, imageStd: openAIStd)
    }

    private static func activation(_ name: String, _ fields: Fields, key: String) throws(CLIPError) -> Activation {
        switch name {
        case "quick_gelu": return .quickGelu
        case "gelu": return .gelu
        default: throw fields.invalid(key, "'\(name)'; expected quick_gelu or gelu")
        }
    }
}

/// Reads of a CLIP configuration, failing as `CLIPError.unrecognized`.
private typealias Fields = ConfigFields<CLIPError>

extension ConfigFields where E == CLIPError {
    /// The JSON object of the file at `path`: unreadable, or unrecognized when it is not one.
    static func load(_ path: String) throws(CLIPError) -> ConfigFields {
        try load(path, unreadable: { .unreadable(path: $0, reason: $1) }, invalid: { .unrecognized(path: $0, reason: $1) })
    }
}
