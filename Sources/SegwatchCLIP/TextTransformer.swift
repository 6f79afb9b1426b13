// Ports the CLIP text tower: transformers' `CLIPTextTransformer` (+ `text_projection`) and
// open_clip's text side of `CLIP` (`encode_text`): token and position embeddings, causal
// blocks, the final LayerNorm at the end-of-text token, and the projection.
import SegwatchNN
import SegwatchTensor

public struct TextTransformer<B: Backend>: Sendable {
    let backend: B
    /// `[vocabulary, W]` on the host (memory-mapped): rows are gathered per text.
    let tokenEmbedding: Tensor
    let positionEmbedding: B.Value
    let blocks: [ResidualAttentionBlock<B>]
    let finalNorm: LayerNorm<B>
    let projection: B.Value
    public let contextLength: Int

    init(_ root: Weights<B>, _ keys: CLIPKeys, _ config: CLIPConfig) throws {
        backend = root.backend
        let w = root.scope(keys.text.prefix)
        let width = config.text.width
        contextLength = config.contextLength
        tokenEmbedding = try w.host(keys.tokenEmbedding, [config.vocabSize, width])
        positionEmbedding = try w(keys.text.positionEmbedding, [contextLength, width])
        blocks = try loadBlocks(w, container: keys.text.blocks, keys.block, config.text, config)
        finalNorm = try LayerNorm(w.scope(keys.text.finalNorm), channels: width, eps: config.layerNormEps)
        projection = try loadProjection(root, keys.text.projection, width: width, embedDim: config.embedDim, linear: keys.projectionIsLinear)
    }

    /// `ids`: N rows of `contextLength` token ids (SOT ... EOT, zero padding) -> `[N, D]`
    /// projected, not normalized, taken at each row's first largest id (EOT, 49407).
    public func callAsFunction(_ ids: [[Int32]]) throws(CLIPError) -> B.Value {
        let (vocabulary, width) = (tokenEmbedding.shape[0], tokenEmbedding.shape[1])
        var embedded = [Float](repeating: 0, count: ids.count * contextLength * width)
        var ends: [Int] = []
        for (n, row) in ids.enumerated() {
            guard row.count == contextLength else {
                throw .invalidInput("text \(n) has \(row.count) token ids; expected \(contextLength)")
            }
            for (t, id) in row.enumerated() {
                guard id >= 0, Int(id) < vocabulary else { throw .invalidInput("token id \(id) outside the vocabulary of \(vocabulary)") }
                let source = tokenEmbedding.pointer + Int(id) * width
                embedded.withUnsafeMutableBufferPointer { target in
                    (target.baseAddress! + (n * contextLength + t) * width).update(from: source, count: width)
                }
            }
            ends.append(row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!)
        }
        var x = backend.upload(Tensor(shape: [ids.count, contextLength, width], values: embedded))
        x = backend.binary(x, .add, positionEmbedding)
        for block in blocks { x = block(x, causal: true) }
        // The final LayerNorm is per token: only the end-of-text rows are needed.
        let rows = ends.enumerated().map { n, end in
            backend.reshape(backend.select(backend.select(x, dim: 0, n), dim: 0, end), [1, width])
        }
        let pooled = rows.isEmpty ? backend.upload(Tensor(zeros: [0, width])) : backend.concat(rows, dim: 0)
        return backend.linear(finalNorm(pooled), weight: projection, bias: nil)
    }
}
