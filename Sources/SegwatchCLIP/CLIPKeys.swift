// The weight names of the two published layouts. transformers: `CLIPModel` of
// transformers/models/clip/modeling_clip.py; open_clip: `CLIP` of open_clip/model.py with its
// `VisionTransformer` and `TextTransformer` (transformer.py). Keys stay verbatim strings.

/// Where each tensor lives in one layout's state dict.
struct CLIPKeys: Sendable {
    struct Tower: Sendable {
        /// The tower's module (`vision_model.`, `visual.`, `text_model.`, or the root).
        var prefix: String
        var positionEmbedding: String
        /// The blocks' container: `encoder.layers` or `transformer.resblocks`.
        var blocks: String
        /// The final LayerNorm: `post_layernorm`, `ln_post`, `final_layer_norm`, `ln_final`.
        var finalNorm: String
        /// The projection into the joint space, from the state dict's root.
        var projection: String
    }

    struct Block: Sendable {
        var norm1, norm2: String
        /// `q_proj`/`k_proj`/`v_proj` (transformers) or nil for one fused `attn.in_proj_*` (open_clip).
        var separateQKV: (q: String, k: String, v: String)?
        var fusedQKV: (weight: String, bias: String)?
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
        vision: Tower(prefix: "vision_model.", positionEmbedding: "embeddings.position_embedding.weight",
                      blocks: "encoder.layers", finalNorm: "post_layernorm", projection: "visual_projection.weight"),
        text: Tower(prefix: "text_model.", positionEmbedding: "embeddings.position_embedding.weight",
                    blocks: "encoder.layers", finalNorm: "final_layer_norm", projection: "text_projection.weight"),
        block: Block(norm1: "layer_norm1", norm2: "layer_norm2",
                     separateQKV: ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), fusedQKV: nil,
                     outProj: "self_attn.out_proj", fc1: "mlp.fc1", fc2: "mlp.fc2"),
        classEmbedding: "embeddings.class_embedding", patchEmbedding: "embeddings.patch_embedding",
        preNorm: "pre_layrnorm", tokenEmbedding: "embeddings.token_embedding.weight", projectionIsLinear: true,
        ignored: ["vision_model.embeddings.position_ids", "text_model.embeddings.position_ids"])

    static let openCLIP = CLIPKeys(
        vision: Tower(prefix: "visual.", positionEmbedding: "positional_embedding",
                      blocks: "transformer.resblocks", finalNorm: "ln_post", projection: "visual.proj"),
        text: Tower(prefix: "", positionEmbedding: "positional_embedding",
                    blocks: "transformer.resblocks", finalNorm: "ln_final", projection: "text_projection"),
        block: Block(norm1: "ln_1", norm2: "ln_2", separateQKV: nil, fusedQKV: ("attn.in_proj_weight", "attn.in_proj_bias"),
                     outProj: "attn.out_proj", fc1: "mlp.c_fc", fc2: "mlp.c_proj"),
        classEmbedding: "class_embedding", patchEmbedding: "conv1",
        preNorm: "ln_pre", tokenEmbedding: "token_embedding.weight", projectionIsLinear: false,
        ignored: ["attn_mask", "visual.attn_mask"])

    static func of(_ layout: CLIPConfig.Layout) -> CLIPKeys {
        switch layout {
        case .transformers: transformers
        case .openCLIP: openCLIP
        }
    }
}
