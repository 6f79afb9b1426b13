// Ports the CLIP image tower: transformers' `CLIPVisionTransformer` (+ `visual_projection`) and
// open_clip's `VisionTransformer`, with transformers' `interpolate_pos_encoding` for grids other
// than the native one, and ClearCLIP dense features (`clearclip_last_block`).
import SegwatchNN
import SegwatchTensor

public struct VisionTransformer<B: Backend>: Sendable {
    let backend: B
    let patchEmbedding: Conv2d<B>
    let classEmbedding: Tensor
    /// `[1 + g0 * g0, W]` on the host: resized per grid.
    let positionEmbedding: Tensor
    let preNorm: LayerNorm<B>
    let blocks: [ResidualAttentionBlock<B>]
    let postNorm: LayerNorm<B>
    /// `[D, W]`, applied as a bias-free linear.
    let projection: B.Value
    public let patchSize: Int
    let nativeGrid: Int

    init(_ root: Weights<B>, _ keys: CLIPKeys, _ config: CLIPConfig) throws {
        backend = root.backend
        let w = root.scope(keys.vision.prefix)
        let width = config.vision.width
        patchSize = config.patchSize
        nativeGrid = config.imageSize / config.patchSize
        patchEmbedding = try Conv2d(w.scope(keys.patchEmbedding), input: 3, output: width, kernel: patchSize, bias: false,
                                    Conv2dOptions(stride: patchSize))
        classEmbedding = try w.host(keys.classEmbedding, [width])
        positionEmbedding = try w.host(keys.vision.positionEmbedding, [1 + nativeGrid * nativeGrid, width])
        preNorm = try LayerNorm(w.scope(keys.preNorm), channels: width, eps: config.layerNormEps)
        blocks = try loadBlocks(w, container: keys.vision.blocks, keys.block, config.vision, config)
        postNorm = try LayerNorm(w.scope(keys.vision.finalNorm), channels: width, eps: config.layerNormEps)
        projection = try loadProjection(root, keys.vision.projection, width: width, embedDim: config.embedDim, linear: keys.projectionIsLinear)
    }

    /// The position embedding for a `gh x gw` grid: the class row kept, the native grid resized
    /// with bicubic (align_corners=False, no antialias), as `interpolate_pos_encoding` does.
    func positions(_ grid: (h: Int, w: Int)) -> Tensor {
        guard grid != (nativeGrid, nativeGrid) else { return positionEmbedding.reshaped([1] + positionEmbedding.shape) }
        let width = positionEmbedding.shape[1]
        let native = positionEmbedding.sliced(0, 1..<positionEmbedding.shape[0])
            .reshaped([1, nativeGrid, nativeGrid, width]).permuted([0, 3, 1, 2])
        let resized = interpolate(native, size: grid, mode: .bicubic).permuted([0, 2, 3, 1]).reshaped([1, grid.h * grid.w, width])
        return concat([positionEmbedding.sliced(0, 0..<1).reshaped([1, 1, width]), resized], dim: 1)
    }

    /// pixels `[N, 3, H, W]` (normalized) -> the input of the last block `[N, 1 + gh * gw, W]`.
    func trunk(_ pixels: B.Value) -> (x: B.Value, grid: (h: Int, w: Int)) {
        let shape = backend.shape(pixels)
        let (batch, grid) = (shape[0], (h: shape[2] / patchSize, w: shape[3] / patchSize))
        let width = classEmbedding.count
        let patches = backend.permute(backend.reshape(patchEmbedding(pixels), [batch, width, grid.h * grid.w]), [0, 2, 1])
        let classTokens = concat(Array(repeating: classEmbedding.reshaped([1, 1, width]), count: batch), dim: 0)
        var x = backend.concat([backend.upload(classTokens), patches], dim: 1)
        x = backend.binary(x, .add, backend.upload(positions(grid)))
        x = preNorm(x)
        for block in blocks.dropLast() { x = block(x, causal: false) }
        return (x, grid)
    }

    /// The pooled embeddings `[N, D]` (not normalized) and, with `dense`, the ClearCLIP patch
    /// features `[N, gh, gw, D]` in the joint space (not normalized), sharing the trunk.
    public func callAsFunction(_ pixels: B.Value, dense: Bool) -> (pooled: B.Value, dense: B.Value?) {
        let (x, grid) = trunk(pixels)
        let last = blocks[blocks.count - 1]
        let classToken = backend.select(last(x, causal: false), dim: 1, 0)
        let pooled = backend.linear(postNorm(classToken), weight: projection, bias: nil)
        guard dense else { return (pooled, nil) }
        let tokens = backend.linear(postNorm(last.clearCLIP(x)), weight: projection, bias: nil)
        let patches = backend.slice(tokens, dim: 1, 1..<(1 + grid.h * grid.w))
        let shape = backend.shape(tokens)
        return (pooled, backend.reshape(backend.contiguous(patches), [shape[0], grid.h, grid.w, shape[2]]))
    }
}

/// A tower's projection as a `[D, W]` linear weight: transformers stores it so; open_clip's
/// `[W, D]` matrix is transposed once at load.
func loadProjection<B: Backend>(_ root: Weights<B>, _ key: String, width: Int, embedDim: Int, linear: Bool) throws -> B.Value {
    if linear { return try root(key, [embedDim, width]) }
    return root.backend.upload(try root.host(key, [width, embedDim]).permuted([1, 0]).contiguous())
}
