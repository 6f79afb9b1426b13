// Ports transformers 5.24 `Dinov2Embeddings` and `Dinov2WithRegistersEmbeddings`
// (models/dinov2/modeling_dinov2.py, models/dinov2_with_registers/modeling_dinov2_with_registers.py):
// the patch projection, the class token, the position embeddings resized to the picture's grid
// by `interpolate_pos_encoding`, and the register tokens inserted after the class token (they
// get no position). The mask token is for pretraining only.
import SegwatchNN
import SegwatchTensor

struct Dinov2Embeddings<B: Backend>: Sendable {
    let backend: B
    /// `patch_embeddings.projection`: a `patch x patch` convolution of stride `patch`.
    let projection: Conv2d<B>
    /// `cls_token` `[D]` on the host.
    let clsToken: Tensor
    /// `register_tokens` `[R, D]` on the host (R = 0 without registers).
    let registerTokens: Tensor
    /// `position_embeddings` `[1 + g * g, D]` on the host: resized per grid.
    let positionEmbeddings: Tensor
    let patchSize: Int
    let nativeGrid: Int
    /// With registers, transformers resizes the positions with `antialias=True`.
    let antialias: Bool
    let resized = ResizedPositions()

    init(_ w: Weights<B>, _ config: DINOv2Config) throws {
        backend = w.backend
        let width = config.hiddenSize, grid = config.nativeGrid
        patchSize = config.patchSize
        nativeGrid = grid
        antialias = config.architecture == .withRegisters
        projection = try Conv2d(w.scope("patch_embeddings.projection"), input: 3, output: width, kernel: patchSize,
                                Conv2dOptions(stride: patchSize))
        clsToken = try w.host("cls_token", [1, 1, width]).reshaped([width])
        registerTokens = config.registers > 0
            ? try w.host("register_tokens", [1, config.registers, width]).reshaped([config.registers, width])
            : Tensor(shape: [0, width], values: [])
        positionEmbeddings = try w.host("position_embeddings", [1, 1 + grid * grid, width]).reshaped([1 + grid * grid, width])
        w.ignore("mask_token")
    }

    /// The patch rows of `interpolate_pos_encoding` for a `gh x gw` grid, `[1, gh * gw, D]`: the
    /// stored grid as it is when the grid is the same, else resized with bicubic in float32
    /// (align_corners=False; antialiased with registers).
    func positions(_ grid: (h: Int, w: Int)) -> Tensor {
        let width = positionEmbeddings.shape[1]
        let stored = positionEmbeddings.sliced(0, 1..<positionEmbeddings.shape[0])
        guard grid != (nativeGrid, nativeGrid) else { return stored.reshaped([1, grid.h * grid.w, width]) }
        return resized.table(grid) {
            let native = stored.reshaped([1, nativeGrid, nativeGrid, width]).permuted([0, 3, 1, 2])
            return interpolate(native, size: grid, mode: .bicubic, antialias: antialias).permuted([0, 2, 3, 1]).contiguous()
                .reshaped([1, grid.h * grid.w, width])
        }
    }

    /// pixels `[N, 3, H, W]` (normalized) -> tokens `[N, 1 + R + gh * gw, D]`: the class token
    /// plus its position, the registers, then the patches plus theirs.
    func callAsFunction(_ pixels: B.Value) -> (x: B.Value, grid: (h: Int, w: Int)) {
        let shape = backend.shape(pixels)
        let (batch, grid) = (shape[0], (h: shape[2] / patchSize, w: shape[3] / patchSize))
        let width = clsToken.count
        let patches = backend.permute(backend.reshape(projection(pixels), [batch, width, grid.h * grid.w]), [0, 2, 1])
        let placed = backend.binary(patches, .add, backend.upload(positions(grid)))
        let classRow = SegwatchTensor.binary(clsToken, .add, positionEmbeddings.sliced(0, 0..<1).reshaped([width]))
        let prefix = concat([classRow.reshaped([1, width]), registerTokens], dim: 0).reshaped([1, 1 + registerTokens.shape[0], width])
        let prefixes = backend.upload(concat(Array(repeating: prefix, count: batch), dim: 0))
        return (backend.concat([prefixes, placed], dim: 1), grid)
    }
}
