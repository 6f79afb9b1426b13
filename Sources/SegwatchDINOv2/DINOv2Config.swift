// The hyper-parameters of a DINOv2 model in the transformers layout: `config.json`
// (transformers 5.24 `Dinov2Config` and `Dinov2WithRegistersConfig`, with their defaults) and
// the image statistics of `preprocessor_config.json` (`BitImageProcessor`).
import Foundation
import SegwatchNN
import SegwatchTensor

public struct DINOv2Config: Sendable, Equatable {
    /// `model_type`: which transformers model the folder holds.
    public enum Architecture: String, Sendable {
        /// `Dinov2Model`.
        case dinov2
        /// `Dinov2WithRegistersModel`: register tokens after the class token, and positions
        /// resized with antialiasing.
        case withRegisters = "dinov2_with_registers"
    }

    public var architecture: Architecture
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var mlpRatio: Double
    public var patchSize: Int
    /// The pretraining size (square): the position embedding's grid is `imageSize / patchSize`.
    public var imageSize: Int
    /// Register tokens (0 without registers).
    public var registers: Int
    public var activation: Activation
    /// The feed-forward is SwiGLU (ViT-g) instead of an MLP.
    public var swiGLU: Bool
    public var qkvBias: Bool
    public var layerNormEps: Float
    public var imageMean: [Float]
    public var imageStd: [Float]

    /// ImageNet's statistics, `BitImageProcessor`'s for DINOv2.
    public static let imageNetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imageNetStd: [Float] = [0.229, 0.224, 0.225]

    public var headDim: Int { hiddenSize / heads }
    /// The native position grid's side (`Dinov2PatchEmbeddings.num_patches` is its square).
    public var nativeGrid: Int { imageSize / patchSize }

    /// The feed-forward's inner width: `int(hidden * mlp_ratio)` (`Dinov2MLP`), for SwiGLU
    /// two thirds of it rounded up to a multiple of 8 (`Dinov2SwiGLUFFN`).
    public var mlpHidden: Int {
        let hidden = Int(Double(hiddenSize) * mlpRatio)
        return swiGLU ? (Int(Double(hidden) * 2 / 3) + 7) / 8 * 8 : hidden
    }

    public var summary: String {
        "DINOv2 (\(architecture.rawValue)), \(layers)x\(hiddenSize) patch \(patchSize) at \(imageSize)"
            + (registers > 0 ? ", \(registers) registers" : "") + (swiGLU ? ", SwiGLU" : "")
    }
}

/// Reads of a DINOv2 configuration, failing as `DINOv2Error.unrecognized`.
private typealias Fields = ConfigFields<DINOv2Error>

extension DINOv2Config {
    /// Reads `config.json` and `preprocessor_config.json` (optional) of a model folder.
    public static func load(_ folder: String) throws(DINOv2Error) -> DINOv2Config {
        let url = URL(fileURLWithPath: folder)
        let config = url.appendingPathComponent("config.json").path
        guard FileManager.default.fileExists(atPath: config) else {
            guard FileManager.default.fileExists(atPath: folder) else { throw .unreadable(path: folder, reason: "no such folder") }
            throw .unrecognized(path: folder, reason: "no config.json (the transformers layout)")
        }
        let preprocessor = url.appendingPathComponent("preprocessor_config.json").path
        return try from(Fields.load(config, unreadable: { .unreadable(path: $0, reason: $1) }, invalid: { .unrecognized(path: $0, reason: $1) }),
                        preprocessor: FileManager.default.fileExists(atPath: preprocessor)
                            ? Fields.load(preprocessor, unreadable: { .unreadable(path: $0, reason: $1) },
                                          invalid: { .unrecognized(path: $0, reason: $1) })
                            : nil)
    }

    fileprivate static func from(_ fields: Fields, preprocessor: Fields?) throws(DINOv2Error) -> DINOv2Config {
        let type = try fields.string("model_type", default: "")
        guard let architecture = Architecture(rawValue: type) else {
            throw fields.invalid("model_type", "'\(type)'; expected dinov2 or dinov2_with_registers")
        }
        let hidden = try fields.int("hidden_size", default: 768), heads = try fields.int("num_attention_heads", default: 12)
        guard hidden % heads == 0 else { throw fields.invalid("num_attention_heads", "\(heads) heads do not divide hidden_size \(hidden)") }
        let patch = try fields.int("patch_size", default: architecture == .dinov2 ? 14 : 16)
        let image = try fields.int("image_size", default: 224)
        guard try fields.int("num_channels", default: 3) == 3 else { throw fields.invalid("num_channels", "segwatch reads RGB pictures: expected 3") }
        let name = try fields.string("hidden_act", default: "gelu")
        let activation: Activation
        switch name {
        case "gelu": activation = .gelu
        case "gelu_new", "gelu_pytorch_tanh": activation = .geluTanh
        case "quick_gelu": activation = .quickGelu
        case "relu": activation = .relu
        default: throw fields.invalid("hidden_act", "'\(name)'; expected gelu, gelu_new, gelu_pytorch_tanh, quick_gelu or relu")
        }
        return DINOv2Config(
            architecture: architecture, hiddenSize: hidden, layers: try fields.int("num_hidden_layers", default: 12), heads: heads,
            mlpRatio: try fields.double("mlp_ratio", default: 4), patchSize: patch, imageSize: image,
            registers: architecture == .withRegisters ? try fields.count("num_register_tokens", default: 4) : 0,
            activation: activation, swiGLU: try fields.bool("use_swiglu_ffn", default: false),
            qkvBias: try fields.bool("qkv_bias", default: true), layerNormEps: Float(try fields.double("layer_norm_eps", default: 1e-6)),
            imageMean: try preprocessor?.floats("image_mean", count: 3, default: imageNetMean) ?? imageNetMean,
            imageStd: try preprocessor?.floats("image_std", count: 3, default: imageNetStd) ?? imageNetStd)
    }
}
