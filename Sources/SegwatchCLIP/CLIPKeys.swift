// The weight names of the two published layouts. transformers: `CLIPModel` of
// transformers/models/clip/modeling_clip.py; open_clip: `CLIP` of open_clip/model.py with its
// `VisionTransformer` and `TextTransformer` (transformer.py). Keys stay verbatim strings.

/// Where each tensor lives in one layout's state dict.
struct CLIPKeys: Sendable {
    struct Tower: Sendable {
        /// The tower's module (`vision_model`, `visual`, `text_model`, or "" for the root).
        var prefix: String
        var positionEmbedding: String
        /// The blocks' container: `encoder.layers` or `transformer.resblocks`.
        var blocks: String
        /// The final LayerNorm: `post_layernorm`, `ln_post`, `final_layer_norm`, `ln_final`.
        var finalNorm: String
        /// The projection into the joint space, from the state dict's root.
        var projection: String
    }

    /// Where a block's query, key and value projections are.
    enum QKV: Sendable {
        /// Three Linear modules (transformers' `q_proj`, `k_proj`, `v_proj`).
        case separate(q: String, k: String, v: String)
        /// One stacked `[3W, W]` weight and `[3W]` bias (open_clip's `attn.in_proj_*`).
        case fused(weight: String, bias: String)
    }

    struct Block: Sendable {
        var norm1, norm2: String
        var qkv: QKV
        var outProj, fc1, fc2: String
    }

    var vision: Tower
    var text: Tower
    var block: Block
    var classEmbedding: String
    var patchEmbedding: String
    var preNorm: String
    var tokenEmbedding: String
    /// transformers stores projections as Linear weights `[D, W]`; open_clip as matrices
    /// `[W, D]` applied as `x @ proj`.
    var projectionIsLinear: Bool
    /// Buffers published checkpoints carry that the model reads nothing from.
    var ignored: [String]

    static let transformers = CLIPKeys(
        vision: Tower(prefix: "vision_model", positionEmbedding: "embeddings.position_embedding.weight",
                      blocks: "encoder.layers", finalNorm: "post_layernorm", projection: "visual_projection.weight"),
        text: Tower(prefix: "text_model", positionEmbedding: "embeddings.position_embedding.weight",
                    blocks: "encoder.layers", finalNorm: "final_layer_norm", projection: "text_projection.weight"),
        block: Block(norm1: "layer_norm1", norm2: "layer_norm2",
                     qkv: .separate(q: "self_attn.q_proj", k: "self_attn.k_proj", v: "self_attn.v_proj"),
                     outProj: "self_attn.out_proj", fc1: "mlp.fc1", fc2: "mlp.fc2"),
        classEmbedding: "embeddings.class_embedding", patchEmbedding: "embeddings.patch_embedding",
        preNorm: "pre_layrnorm", tokenEmbedding: "embeddings.token_embedding.weight", projectionIsLinear: true,
        ignored: ["vision_model.embeddings.position_ids", "text_model.embeddings.position_ids"])

    static let openCLIP = CLIPKeys(
        vision: Tower(prefix: "visual", positionEmbedding: "positional_embedding",
                      blocks: "transformer.resblocks", finalNorm: "ln_post", projection: "visual.proj"),
        text: Tower(prefix: "", positionEmbedding: "positional_embedding",
                    blocks: "transformer.resblocks", finalNorm: "ln_final", projection: "text_projection"),
        block: Block(norm1: "ln_1", norm2: "ln_2", qkv: .fused(weight: "attn.in_proj_weight", bias: "attn.in_proj_bias"),
                     outProj: "attn.out_proj", fc1: "mlp.c_fc", fc2: "mlp.c_proj"),
        classEmbedding: "class_embedding", patchEmbedding: "conv1",
        preNorm: "ln_pre", tokenEmbedding: "token_embedding.weight", projectionIsLinear: false,
        ignored: ["attn_mask", "visual.attn_mask"])

    /// open_clip kept OpenAI's names; OpenAI's TorchScript files also hold the model's
    /// settings as tensors, which the shapes already give.
    static let openAI: CLIPKeys = {
        var keys = openCLIP
        keys.ignored += ["input_resolution", "context_length", "vocab_size"]
        return keys
    }()

    static func of(_ layout: CLIPConfig.Layout) -> CLIPKeys {
        switch layout {
        case .transformers: transformers
        case .openCLIP: openCLIP
        case .openAI: openAI
        }
    }
}
