// A transformers DINOv2 folder (`config.json` + `model.safetensors`) with random weights, for
// benchmarks that have no weights at hand.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SegwatchCheckpoint
import SegwatchTensor

/// Writes a transformers DINOv2 folder (`Dinov2Model`, patch 14, positions for 518x518,
/// ImageNet statistics) with random weights of the given shapes.
public func writeSyntheticDINOv2(to folder: URL, width: Int, layers: Int, heads: Int) throws {
    struct Config: Encodable {
        let model_type = "dinov2", hidden_size: Int, num_hidden_layers: Int, num_attention_heads: Int
        let mlp_ratio = 4, patch_size = 14, image_size = 518, layer_norm_eps = 1e-6, hidden_act = "gelu"
        let qkv_bias = true, use_swiglu_ffn = false
    }
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try writeJSON(Config(hidden_size: width, num_hidden_layers: layers, num_attention_heads: heads),
                  to: folder.appendingPathComponent("config.json"))
    var dict = SyntheticStateDict(seed: 100)
    let grid = 518 / 14
    dict.add("embeddings.cls_token", [1, 1, width])
    dict.add("embeddings.mask_token", [1, width])
    dict.add("embeddings.patch_embeddings.projection.weight", [width, 3, 14, 14])
    dict.add("embeddings.patch_embeddings.projection.bias", [width])
    dict.add("embeddings.position_embeddings", [1, 1 + grid * grid, width])
    for i in 0..<layers {
        let p = "encoder.layer.\(i)."
        for norm in ["norm1", "norm2"] {
            dict.add(p + norm + ".weight", [width], offset: 1)
            dict.add(p + norm + ".bias", [width])
        }
        for part in ["query", "key", "value"] {
            dict.add(p + "attention.attention.\(part).weight", [width, width])
            dict.add(p + "attention.attention.\(part).bias", [width])
        }
        dict.add(p + "attention.output.dense.weight", [width, width])
        dict.add(p + "attention.output.dense.bias", [width])
        dict.add(p + "layer_scale1.lambda1", [width], scale: 0, offset: 0.1)
        dict.add(p + "layer_scale2.lambda1", [width], scale: 0, offset: 0.1)
        dict.add(p + "mlp.fc1.weight", [4 * width, width])
        dict.add(p + "mlp.fc1.bias", [4 * width])
        dict.add(p + "mlp.fc2.weight", [width, 4 * width])
        dict.add(p + "mlp.fc2.bias", [width])
    }
    dict.add("layernorm.weight", [width], offset: 1)
    dict.add("layernorm.bias", [width])
    try writeSafeTensors(dict.tensors, to: folder.appendingPathComponent("model.safetensors").path)
}
