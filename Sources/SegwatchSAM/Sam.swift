// Ports segment_anything/modeling/sam.py and the builders of build_sam.py (segment-anything
// 1.0 and mobilesam-mirror 1.0.0): the model, loaded from a published checkpoint unchanged.
import SegwatchCheckpoint
import SegwatchNN
import SegwatchTensor
import Synchronization

public enum SamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file is a readable checkpoint but not a SAM model this port knows.
    case unrecognized(file: String, reason: String)
    /// A prompt or an image the model cannot take.
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .unrecognized(file, reason):
            return "\(file) is not a SAM checkpoint (SAM ViT-B/L/H .pth or MobileSAM mobile_sam.pt): \(reason)"
        case let .invalidInput(reason):
            return reason
        }
    }
}

/// Prompts that can share a mask-decoder batch: the same token count, and all or none with a mask input.
private struct DecoderBatchKey: Hashable {
    var tokens: Int
    var hasMask: Bool
}

/// The image encoder a checkpoint holds.
public enum SamImageEncoder<B: Backend>: Sendable {
    case vit(ImageEncoderViT<B>)
    case tinyViT(TinyViT<B>)

    func callAsFunction(_ x: B.Value) -> B.Value {
        switch self {
        case let .vit(encoder): return encoder(x)
        case let .tinyViT(encoder): return encoder(x)
        }
    }

    public var summary: String {
        switch self {
        case let .vit(encoder): return encoder.summary
        case let .tinyViT(encoder): return encoder.summary
        }
    }
}

/// `Sam`: image encoder, prompt encoder and mask decoder.
public struct Sam<B: Backend>: Sendable {
    public let backend: B
    public let imageEncoder: SamImageEncoder<B>
    public let promptEncoder: PromptEncoder<B>
    public let maskDecoder: MaskDecoder<B>
    /// `image_encoder.img_size`: the square the image is resized and padded to.
    public let imageSize = 1024
    /// Prompts per mask-decoder batch.
    static var decoderBatch: Int { 8 }
    /// The image embedding's grid: `imageSize / 16`.
    public let embeddingSize = 64
    public let pixelMean: [Float] = [123.675, 116.28, 103.53]
    public let pixelStd: [Float] = [58.395, 57.12, 57.375]

    /// Loads `path` (a SAM `.pth`, MobileSAM's `.pt`, or the same state dict as safetensors),
    /// strictly: every tensor must be used and have the shape the architecture implies.
    public init(contentsOf path: String, backend: B) throws {
        try self.init(stateDict: try StateDict.load(path), backend: backend)
    }

    public init(stateDict: StateDict, backend: B) throws {
        self.backend = backend
        let reader = WeightReader(stateDict)
        let root = Weights(reader: reader, backend: backend, prefix: "")
        let encoder = root.scope("image_encoder")
        if encoder.shape("patch_embed.proj.weight") != nil {
            imageEncoder = .vit(try ImageEncoderViT(encoder, imageSize: imageSize))
        } else if encoder.shape("patch_embed.seq.0.c.weight") != nil {
            imageEncoder = .tinyViT(try TinyViT(encoder, imageSize: imageSize))
        } else {
            let found = stateDict.names.prefix(3).joined(separator: ", ")
            throw SamError.unrecognized(
                file: stateDict.path,
                reason: "it has neither 'image_encoder.patch_embed.proj.weight' (ViT) nor 'image_encoder.patch_embed.seq.0.c.weight' (TinyViT); "
                    + "its \(stateDict.names.count) tensors begin with \(found.isEmpty ? "nothing" : found)")
        }
        maskDecoder = try MaskDecoder(root.scope("mask_decoder"))
        promptEncoder = try PromptEncoder(root.scope("prompt_encoder"), embedDim: maskDecoder.transformerDim,
                                          imageEmbeddingSize: (embeddingSize, embeddingSize), inputImageSize: (imageSize, imageSize))
        // The official Sam registers pixel_mean/pixel_std as non-persistent buffers; tolerate them.
        root.ignore("pixel_mean")
        root.ignore("pixel_std")
        try reader.checkAllUsed()
    }

    /// The image embedding `[1, 256, 64, 64]` of a normalized, padded `[1, 3, 1024, 1024]` image.
    public func encode(_ image: B.Value) -> B.Value {
        imageEncoder(image)
    }

    /// Mask logits and IoU predictions of `prompts` against one image embedding. Prompts are in
    /// the model's input frame. Batches are formed of prompts with the same token count and
    /// mask input; results come back in the order of `prompts`.
    public func decode(_ embedding: B.Value, prompts: [SamPrompt], multimask: Bool) throws -> DecoderOutput<B.Value> {
        for prompt in prompts {
            if let mask = prompt.maskInput, mask.count != promptEncoder.maskInputSize.h * promptEncoder.maskInputSize.w {
                throw SamError.invalidInput("mask input has shape \(mask.shape); expected [1, \(promptEncoder.maskInputSize.h), \(promptEncoder.maskInputSize.w)]")
            }
            if let bad = prompt.points.first(where: { $0.label != 0 && $0.label != 1 }) {
                throw SamError.invalidInput("point label \(bad.label); expected 1 (foreground) or 0 (background)")
            }
        }
        guard !prompts.isEmpty else { throw SamError.invalidInput("no prompts") }
        // Group prompts that can share one decoder batch, keeping the first occurrence order.
        var groups: [[Int]] = []
        var groupOf: [DecoderBatchKey: Int] = [:]
        for (i, prompt) in prompts.enumerated() {
            let key = DecoderBatchKey(tokens: prompt.tokenCount, hasMask: prompt.maskInput != nil)
            if let g = groupOf[key] { groups[g].append(i) } else { groupOf[key] = groups.count; groups.append([i]) }
        }
        // Transformer batches of at most `decoderBatch` prompts (larger ones only add memory
        // traffic), as even as the backend's concurrent items allow.
        let concurrent = backend.concurrentItems
        let batches = groups.flatMap { evenBatches($0, atMost: Self.decoderBatch, items: concurrent) }
        let items = sharedOut(batches.map(\.count), items: concurrent)
        // The image as rows of channels once for all batches, and, for the batches without mask
        // inputs, the first block's image side.
        let imageRows = maskDecoder.channelRows(embedding), grid = Array(backend.shape(embedding).suffix(2))
        let keyPE = promptEncoder.denseImagePETokens
        let shared = prompts.contains { $0.maskInput == nil }
            ? maskDecoder.imageSide(imageRows: imageRows, keyPE: keyPE, dense: promptEncoder.denseNoMask) : nil
        // Batches run side by side where the backend can: on the CPU, one item per thread, each
        // op of its batches on that thread, instead of every op split over the threads in turn.
        let results = Mutex([DecoderOutput<B.Value>?](repeating: nil, count: batches.count))
        backend.concurrently(items.count) { [batches] item in
            for b in items[item] {
                let batch = batches[b].map { prompts[$0] }
                let dense = promptEncoder.denseEmbeddings(batch)
                let output = maskDecoder(imageRows: imageRows, grid: grid, keyPE: keyPE, sparse: promptEncoder.sparseEmbeddings(batch),
                                         dense: dense ?? promptEncoder.denseNoMask, shared: dense == nil ? shared : nil, multimask: multimask)
                results.withLock { $0[b] = output }
            }
        }
        let outputs = results.withLock { $0.map { $0! } }
        if outputs.count == 1 { return outputs[0] }
        // Each prompt's row from its batch, back in the callers' order: one concatenation.
        var logits = [B.Value?](repeating: nil, count: prompts.count), ious = logits
        for (batch, out) in zip(batches, outputs) {
            for (row, i) in batch.enumerated() {
                logits[i] = backend.slice(out.lowResLogits, dim: 0, row..<row + 1)
                ious[i] = backend.slice(out.iouPredictions, dim: 0, row..<row + 1)
            }
        }
        return DecoderOutput(lowResLogits: backend.concat(logits.map { $0! }, dim: 0),
                             iouPredictions: backend.concat(ious.map { $0! }, dim: 0))
    }
}

/// `indices` cut into batches of at most `size`, their count a multiple of `items` when there
/// is more than one, their sizes within one of each other: 9 prompts on two threads are 4 + 5,
/// not 8 then 1 while the other thread waits; 17 are 4 + 4 + 4 + 5, not 8 + 8 + 1.
func evenBatches(_ indices: [Int], atMost size: Int, items: Int) -> [[Int]] {
    var count = (indices.count + size - 1) / size
    if count > 1 { count = min((count + items - 1) / items * items, indices.count) }
    return (0..<count).map { b in Array(indices[b * indices.count / count..<(b + 1) * indices.count / count]) }
}

/// The batches of `sizes` shared out over at most `items` items, each batch in turn from the
/// largest to the item with the fewest prompts so far: each item's batches.
func sharedOut(_ sizes: [Int], items: Int) -> [[Int]] {
    guard sizes.count > 1, items > 1 else { return sizes.isEmpty ? [] : [Array(sizes.indices)] }
    var shares = [[Int]](repeating: [], count: min(items, sizes.count)), loads = [Int](repeating: 0, count: shares.count)
    for b in sizes.indices.sorted(by: { (sizes[$0], $1) > (sizes[$1], $0) }) {
        let item = loads.indices.min { (loads[$0], $0) < (loads[$1], $1) }!
        shares[item].append(b)
        loads[item] += sizes[b]
    }
    return shares
}
