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
    let resized = ResizedPositions()
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
    /// With a window, the rows and columns of the picture the window cuts out of the grid.
    func positions(_ grid: (h: Int, w: Int), window: PatchWindow? = nil) -> Tensor {
        let width = positionEmbedding.shape[1]
        var patches: Tensor
        if grid == (nativeGrid, nativeGrid) {
            patches = positionEmbedding.sliced(0, 1..<positionEmbedding.shape[0]).reshaped([1, grid.h, grid.w, width])
        } else {
            patches = resized.table(grid) {
                let native = positionEmbedding.sliced(0, 1..<positionEmbedding.shape[0])
                    .reshaped([1, nativeGrid, nativeGrid, width]).permuted([0, 3, 1, 2])
                return interpolate(native, size: grid, mode: .bicubic).permuted([0, 2, 3, 1]).contiguous()
            }
        }
        if let window { patches = patches.sliced(1, window.rows).sliced(2, window.columns) }
        let count = patches.shape[1] * patches.shape[2]
        return concat([positionEmbedding.sliced(0, 0..<1).reshaped([1, 1, width]), patches.contiguous().reshaped([1, count, width])], dim: 1)
    }

    /// pixels `[N, 3, H, W]` (normalized) -> the input of the last block `[N, 1 + gh * gw, W]`,
    /// and the residual stream after each block of `levels` before the last (1-based, as
    /// transformers' `hidden_states`). With a window, the pixels are its part of a picture whose
    /// grid is the window's `grid`.
    func trunk(_ pixels: B.Value, window: PatchWindow? = nil, levels: Set<Int> = []) -> (x: B.Value, grid: (h: Int, w: Int), hidden: [Int: B.Value]) {
        let shape = backend.shape(pixels)
        let (batch, grid) = (shape[0], (h: shape[2] / patchSize, w: shape[3] / patchSize))
        if let window {
            precondition(grid == (window.rows.count, window.columns.count), "pixels of \(grid) patches for a window of \(window)")
        }
        let width = classEmbedding.count
        let patches = backend.permute(backend.reshape(patchEmbedding(pixels), [batch, width, grid.h * grid.w]), [0, 2, 1])
        let classTokens = concat(Array(repeating: classEmbedding.reshaped([1, 1, width]), count: batch), dim: 0)
        var x = backend.concat([backend.upload(classTokens), patches], dim: 1)
        x = backend.binary(x, .add, backend.upload(positions(window?.grid ?? grid, window: window)))
        x = preNorm(x)
        var hidden: [Int: B.Value] = levels.contains(0) ? [0: x] : [:]
        for (index, block) in blocks.dropLast().enumerated() {
            x = block(x, causal: false)
            if levels.contains(index + 1) { hidden[index + 1] = x }
        }
        return (x, grid, hidden)
    }

    /// The pooled embeddings `[N, D]` (not normalized) and, with `dense`, the ClearCLIP patch
    /// features `[N, gh, gw, D]` in the joint space (not normalized), sharing the trunk. With a
    /// window, `pixels` are that window of a larger picture: its patches get the positions
    /// they have in the whole picture's grid (the same scale), and attend to each other only.
    public func callAsFunction(_ pixels: B.Value, dense: Bool, window: PatchWindow? = nil) -> (pooled: B.Value, dense: B.Value?) {
        let features = features(pixels, dense: dense, window: window)
        return (features.pooled, features.dense)
    }

    /// `callAsFunction`'s outputs, with the residual stream after each block of `levels`
    /// (`[N, 1 + gh * gw, W]`, 1-based as transformers' `hidden_states`; 0 is the input of the
    /// first block, after `pre_layrnorm`), from the same pass.
    public func features(_ pixels: B.Value, dense: Bool, window: PatchWindow? = nil, levels: Set<Int> = [])
        -> (pooled: B.Value, dense: B.Value?, hidden: [Int: B.Value]) {
        precondition(levels.allSatisfy { (0...blocks.count).contains($0) }, "CLIP levels \(levels.sorted()) of a tower of \(blocks.count) blocks")
        var (x, grid, hidden) = trunk(pixels, window: window, levels: levels)
        let last = blocks[blocks.count - 1]
        let output = last(x, causal: false)
        if levels.contains(blocks.count) { hidden[blocks.count] = output }
        let pooled = backend.linear(postNorm(backend.select(output, dim: 1, 0)), weight: projection, bias: nil)
        guard dense else { return (pooled, nil, hidden) }
        let tokens = backend.linear(postNorm(last.clearCLIP(x)), weight: projection, bias: nil)
        let patches = backend.slice(tokens, dim: 1, 1..<(1 + grid.h * grid.w))
        let shape = backend.shape(tokens)
        return (pooled, backend.reshape(backend.contiguous(patches), [shape[0], grid.h, grid.w, shape[2]]), hidden)
    }

    /// The tower's blocks (the deepest level `features` can give).
    public var depth: Int { blocks.count }
}

/// A tower's projection as a `[D, W]` linear weight: transformers stores it so; open_clip's
/// `[W, D]` matrix is transposed once at load.
func loadProjection<B: Backend>(_ root: Weights<B>, _ key: String, width: Int, embedDim: Int, linear: Bool) throws -> B.Value {
    if linear { return try root(key, [embedDim, width]) }
    return root.backend.upload(try root.host(key, [width, embedDim]).permuted([1, 0]).contiguous())
}

/// A rectangle of whole patches cut out of a picture whose patch grid is `grid`.
public struct PatchWindow: Sendable, Equatable, CustomStringConvertible {
    public let grid: (h: Int, w: Int)
    public let rows: Range<Int>
    public let columns: Range<Int>

    public init(grid: (h: Int, w: Int), rows: Range<Int>, columns: Range<Int>) {
        precondition(!rows.isEmpty && !columns.isEmpty && rows.lowerBound >= 0 && columns.lowerBound >= 0
                     && rows.upperBound <= grid.h && columns.upperBound <= grid.w, "window \(rows) x \(columns) of a \(grid) grid")
        (self.grid, self.rows, self.columns) = (grid, rows, columns)
    }

    public var isWhole: Bool { rows == 0..<grid.h && columns == 0..<grid.w }

    public static func == (a: PatchWindow, b: PatchWindow) -> Bool { a.grid == b.grid && a.rows == b.rows && a.columns == b.columns }

    public var description: String { "rows \(rows), columns \(columns) of \(grid.h)x\(grid.w)" }
}
