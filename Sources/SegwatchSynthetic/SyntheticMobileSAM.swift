// MobileSAM's checkpoint (`mobile_sam.pt`: TinyViT-5M image encoder, SAM's prompt encoder and
// mask decoder) with random weights, for benchmarks that have no weights at hand.
import SegwatchCheckpoint
import SegwatchTensor

/// MobileSAM's state dict, names and shapes as `mobile_sam.pt` has them, with random values.
public func syntheticMobileSAM() -> [(name: String, tensor: Tensor)] {
    var dict = SyntheticStateDict(seed: 500)
    func conv2dBN(_ prefix: String, _ input: Int, _ output: Int, kernel: Int, groups: Int = 1) {
        dict.add(prefix + ".c.weight", [output, input / groups, kernel, kernel], scale: 0.1)
        dict.add(prefix + ".bn.weight", [output], scale: 0.1, offset: 1)
        dict.add(prefix + ".bn.bias", [output])
        dict.add(prefix + ".bn.running_mean", [output])
        dict.add(prefix + ".bn.running_var", [output], scale: 0.1, offset: 1)
        dict.add(prefix + ".bn.num_batches_tracked", [], scale: 0)
    }
    func layerNorm(_ prefix: String, _ width: Int) {
        dict.add(prefix + ".weight", [width], offset: 1)
        dict.add(prefix + ".bias", [width])
    }
    func linear(_ prefix: String, _ input: Int, _ output: Int) {
        dict.add(prefix + ".weight", [output, input])
        dict.add(prefix + ".bias", [output])
    }

    // TinyViT-5M: embed_dims [64, 128, 160, 320], depths [2, 2, 6, 2], heads [2, 4, 5, 10],
    // windows [7, 7, 14, 7], MBConv expansion 4, MLP ratio 4.
    let e = "image_encoder."
    conv2dBN(e + "patch_embed.seq.0", 3, 32, kernel: 3)
    conv2dBN(e + "patch_embed.seq.2", 32, 64, kernel: 3)
    let dims = [64, 128, 160, 320], depths = [2, 2, 6, 2], heads = [2, 4, 5, 10], windows = [7, 7, 14, 7]
    for layer in 0..<4 {
        let dim = dims[layer], p = e + "layers.\(layer)."
        for block in 0..<depths[layer] {
            let b = p + "blocks.\(block)."
            if layer == 0 {
                conv2dBN(b + "conv1", dim, 4 * dim, kernel: 1)
                conv2dBN(b + "conv2", 4 * dim, 4 * dim, kernel: 3, groups: 4 * dim)
                conv2dBN(b + "conv3", 4 * dim, dim, kernel: 1)
            } else {
                dict.add(b + "attn.attention_biases", [heads[layer], windows[layer] * windows[layer]])
                layerNorm(b + "attn.norm", dim)
                linear(b + "attn.qkv", dim, 3 * dim)
                linear(b + "attn.proj", dim, dim)
                layerNorm(b + "mlp.norm", dim)
                linear(b + "mlp.fc1", dim, 4 * dim)
                linear(b + "mlp.fc2", 4 * dim, dim)
                conv2dBN(b + "local_conv", dim, dim, kernel: 3, groups: dim)
            }
        }
        if layer < 3 {
            let next = dims[layer + 1]
            conv2dBN(p + "downsample.conv1", dim, next, kernel: 1)
            conv2dBN(p + "downsample.conv2", next, next, kernel: 3, groups: next)
            conv2dBN(p + "downsample.conv3", next, next, kernel: 1)
        }
    }
    layerNorm(e + "norm_head", 320)
    linear(e + "head", 320, 1000)
    dict.add(e + "neck.0.weight", [256, 320, 1, 1])
    layerNorm(e + "neck.1", 256)
    dict.add(e + "neck.2.weight", [256, 256, 3, 3])
    layerNorm(e + "neck.3", 256)

    let pe = "prompt_encoder."
    dict.add(pe + "pe_layer.positional_encoding_gaussian_matrix", [2, 128], scale: 1)
    for i in 0..<4 { dict.add(pe + "point_embeddings.\(i).weight", [1, 256], scale: 1) }
    dict.add(pe + "not_a_point_embed.weight", [1, 256], scale: 1)
    dict.add(pe + "mask_downscaling.0.weight", [4, 1, 2, 2])
    dict.add(pe + "mask_downscaling.0.bias", [4])
    layerNorm(pe + "mask_downscaling.1", 4)
    dict.add(pe + "mask_downscaling.3.weight", [16, 4, 2, 2])
    dict.add(pe + "mask_downscaling.3.bias", [16])
    layerNorm(pe + "mask_downscaling.4", 16)
    dict.add(pe + "mask_downscaling.6.weight", [256, 16, 1, 1])
    dict.add(pe + "mask_downscaling.6.bias", [256])
    dict.add(pe + "no_mask_embed.weight", [1, 256], scale: 1)

    // SAM's mask decoder: a two-layer two-way transformer of width 256 (attention downsampled
    // by 2 across), four mask tokens, the IoU head.
    let d = "mask_decoder."
    func attention(_ prefix: String, inner: Int) {
        linear(prefix + ".q_proj", 256, inner)
        linear(prefix + ".k_proj", 256, inner)
        linear(prefix + ".v_proj", 256, inner)
        linear(prefix + ".out_proj", inner, 256)
    }
    for layer in 0..<2 {
        let p = d + "transformer.layers.\(layer)."
        attention(p + "self_attn", inner: 256)
        layerNorm(p + "norm1", 256)
        attention(p + "cross_attn_token_to_image", inner: 128)
        layerNorm(p + "norm2", 256)
        linear(p + "mlp.lin1", 256, 2048)
        linear(p + "mlp.lin2", 2048, 256)
        layerNorm(p + "norm3", 256)
        layerNorm(p + "norm4", 256)
        attention(p + "cross_attn_image_to_token", inner: 128)
    }
    attention(d + "transformer.final_attn_token_to_image", inner: 128)
    layerNorm(d + "transformer.norm_final_attn", 256)
    dict.add(d + "iou_token.weight", [1, 256], scale: 1)
    dict.add(d + "mask_tokens.weight", [4, 256], scale: 1)
    dict.add(d + "output_upscaling.0.weight", [256, 64, 2, 2])
    dict.add(d + "output_upscaling.0.bias", [64])
    layerNorm(d + "output_upscaling.1", 64)
    dict.add(d + "output_upscaling.3.weight", [64, 32, 2, 2])
    dict.add(d + "output_upscaling.3.bias", [32])
    for i in 0..<4 {
        linear(d + "output_hypernetworks_mlps.\(i).layers.0", 256, 256)
        linear(d + "output_hypernetworks_mlps.\(i).layers.1", 256, 256)
        linear(d + "output_hypernetworks_mlps.\(i).layers.2", 256, 32)
    }
    linear(d + "iou_prediction_head.layers.0", 256, 256)
    linear(d + "iou_prediction_head.layers.1", 256, 256)
    linear(d + "iou_prediction_head.layers.2", 256, 4)
    return dict.tensors
}

/// Writes `syntheticMobileSAM()` as a safetensors file at `path`, which `Sam(contentsOf:)` reads.
public func writeSyntheticMobileSAM(to path: String) throws {
    try writeSafeTensors(syntheticMobileSAM(), to: path)
}
