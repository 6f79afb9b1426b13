// An open_clip model folder (`open_clip_config.json` + `open_clip_model.safetensors`) with
// random weights, for benchmarks that have no weights at hand.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SegwatchCheckpoint
import SegwatchTensor

/// Writes an open_clip model folder with random weights of the given shapes (QuickGELU, image
/// 224, patch 16, context 77, the OpenAI vocabulary size).
public func writeSyntheticOpenCLIP(to folder: URL, vision: (width: Int, layers: Int, headWidth: Int),
                                   text: (width: Int, layers: Int, heads: Int), embedDim: Int) throws {
    struct Config: Encodable {
        struct Model: Encodable {
            struct Vision: Encodable { let image_size = 224, layers: Int, width: Int, patch_size = 16, head_width: Int }
            struct Text: Encodable { let context_length = 77, vocab_size = 49408, width: Int, heads: Int, layers: Int }
            let embed_dim: Int, quick_gelu = true, vision_cfg: Vision, text_cfg: Text
        }
        let model_cfg: Model
    }
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let config = Config(model_cfg: .init(embed_dim: embedDim,
                                         vision_cfg: .init(layers: vision.layers, width: vision.width, head_width: vision.headWidth),
                                         text_cfg: .init(width: text.width, heads: text.heads, layers: text.layers)))
    try writeJSON(config, to: folder.appendingPathComponent("open_clip_config.json"))
    var dict = SyntheticStateDict(seed: 1)
    func blocks(_ prefix: String, width: Int, layers: Int) {
        for i in 0..<layers {
            let p = "\(prefix)transformer.resblocks.\(i)."
            dict.add(p + "ln_1.weight", [width], offset: 1)
            dict.add(p + "ln_1.bias", [width])
            dict.add(p + "attn.in_proj_weight", [3 * width, width])
            dict.add(p + "attn.in_proj_bias", [3 * width])
            dict.add(p + "attn.out_proj.weight", [width, width])
            dict.add(p + "attn.out_proj.bias", [width])
            dict.add(p + "ln_2.weight", [width], offset: 1)
            dict.add(p + "ln_2.bias", [width])
            dict.add(p + "mlp.c_fc.weight", [4 * width, width])
            dict.add(p + "mlp.c_fc.bias", [4 * width])
            dict.add(p + "mlp.c_proj.weight", [width, 4 * width])
            dict.add(p + "mlp.c_proj.bias", [width])
        }
    }
    let grid = 224 / 16
    dict.add("visual.conv1.weight", [vision.width, 3, 16, 16])
    dict.add("visual.class_embedding", [vision.width])
    dict.add("visual.positional_embedding", [1 + grid * grid, vision.width])
    dict.add("visual.ln_pre.weight", [vision.width], offset: 1)
    dict.add("visual.ln_pre.bias", [vision.width])
    blocks("visual.", width: vision.width, layers: vision.layers)
    dict.add("visual.ln_post.weight", [vision.width], offset: 1)
    dict.add("visual.ln_post.bias", [vision.width])
    dict.add("visual.proj", [vision.width, embedDim])
    dict.add("token_embedding.weight", [49408, text.width])
    dict.add("positional_embedding", [77, text.width])
    blocks("", width: text.width, layers: text.layers)
    dict.add("ln_final.weight", [text.width], offset: 1)
    dict.add("ln_final.bias", [text.width])
    dict.add("text_projection", [text.width, embedDim])
    dict.add("logit_scale", [], scale: 0, offset: 4.6052)
    try writeSafeTensors(dict.tensors, to: folder.appendingPathComponent("open_clip_model.safetensors").path)
}

/// `value` as pretty, key-sorted JSON at `url`.
func writeJSON(_ value: some Encodable, to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(value).write(to: url)
}
