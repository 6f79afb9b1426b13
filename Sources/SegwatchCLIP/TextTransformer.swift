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
    /// The joint space's dimension, D.
    public let embedDim: Int

    init(_ root: Weights<B>, _ keys: CLIPKeys, _ config: CLIPConfig) throws {
        backend = root.backend
        let w = root.scope(keys.text.prefix)
        let width = config.text.width
        contextLength = config.contextLength
        embedDim = config.embedDim
        tokenEmbedding = try w.host(keys.tokenEmbedding, [config.vocabSize, width])
        positionEmbedding = try w(keys.text.positionEmbedding, [contextLength, width])
        blocks = try loadBlocks(w, container: keys.text.blocks, keys.block, config.text, config)
        finalNorm = try LayerNorm(w.scope(keys.text.finalNorm), channels: width, eps: config.layerNormEps)
        projection = try loadProjection(root, keys.text.projection, width: width, embedDim: config.embedDim, linear: keys.projectionIsLinear)
    }

    /// `ids`: N rows of `contextLength` token ids (SOT ... EOT, zero padding) -> `[N, D]`
    /// projected, not normalized, taken at each row's first largest id (EOT, 49407).
    ///
    /// The context is cut after the batch's last end-of-text token: with the causal mask no
    /// position sees a later one, so the result is the same and short prompts cost a tenth.
    public func callAsFunction(_ ids: [[Int32]]) throws(CLIPError) -> B.Value {
        let (vocabulary, width) = (tokenEmbedding.shape[0], tokenEmbedding.shape[1])
        var ends: [Int] = []
        for (n, row) in ids.enumerated() {
            guard row.count == contextLength else {
                throw .invalidInput("text \(n) has \(row.count) token ids; expected \(contextLength)")
            }
            if let id = row.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
                throw .invalidInput("text \(n): token id \(id) outside the vocabulary of \(vocabulary)")
            }
            ends.append(row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!)
        }
        guard let tokens = ends.max().map({ $0 + 1 }) else { return backend.upload(Tensor(zeros: [0, embedDim])) }
        var embedded = [Float](repeating: 0, count: ids.count * tokens * width)
        embedded.withUnsafeMutableBufferPointer { target in
            for (n, row) in ids.enumerated() {
                for (t, id) in row.prefix(tokens).enumerated() {
                    (target.baseAddress! + (n * tokens + t) * width).update(from: tokenEmbedding.pointer + Int(id) * width, count: width)
                }
            }
        }
        var x = backend.upload(Tensor(shape: [ids.count, tokens, width], values: embedded))
        x = backend.binary(x, .add, backend.slice(positionEmbedding, dim: 0, 0..<tokens))
        for block in blocks { x = block(x, causal: true) }
        // The final LayerNorm is per token: only the end-of-text rows are needed.
        let rows = ends.enumerated().map { n, end in
            backend.reshape(backend.select(backend.select(x, dim: 0, n), dim: 0, end), [1, width])
        }
        return backend.linear(finalNorm(backend.concat(rows, dim: 0)), weight: projection, bias: nil)
    }
}
