// The classic "SAM + CLIP" segment embedding: CLIP's pooled image embedding of each segment's
// masked crop. USE compares against it; segwatch can blend it into the USE embedding.
import SegwatchCLIP
import SegwatchNN
import SegwatchSAM
import SegwatchTensor

/// Embeds each segment as CLIP sees it alone: the segment's bounding box cut out of the frame,
/// the pixels outside the mask and the padding that makes the crop square filled with CLIP's
/// mean color (so they normalize to zero), resized to the model's native input (Pillow's
/// antialiased bilinear), through the image tower, normalized. Crops run `batchSize` at a time.
public struct CropEmbedder<B: Backend>: Sendable {
    public let clip: CLIP<B>
    public let backend: B
    public let batchSize: Int

    public init(clip: CLIP<B>, backend: B, batchSize: Int = 16) {
        precondition(batchSize > 0, "crop batch size \(batchSize)")
        self.clip = clip
        self.backend = backend
        self.batchSize = batchSize
    }

    /// One unit-norm embedding per mask; nil for an empty mask.
    public func embed(_ picture: RGBImage, masks: [RLE]) throws(PipelineError) -> [[Float]?] {
        let side = clip.config.imageSize
        var crops: [(index: Int, pixels: Tensor)] = []
        var embeddings = [[Float]?](repeating: nil, count: masks.count)
        func flush() {
            guard !crops.isEmpty else { return }
            let batch = concat(crops.map(\.pixels), dim: 0)
            let pooled = backend.download(clip.vision(backend.upload(batch), dense: false).pooled)
            let width = pooled.shape[1], values = pooled.toArray()
            for (row, crop) in crops.enumerated() {
                embeddings[crop.index] = normalized(values[(row * width)..<((row + 1) * width)])
            }
            crops.removeAll(keepingCapacity: true)
        }
        for (n, rle) in masks.enumerated() {
            guard rle.height == picture.height, rle.width == picture.width else {
                throw .mismatch("mask \(n) is \(rle.width)x\(rle.height); the frame is \(picture.width)x\(picture.height)")
            }
            guard let square = maskedSquareCrop(picture, mask: rleToMask(rle), fill: clip.config.imageMean) else { continue }
            let resized = pilBilinearResize(square, height: side, width: side)
            crops.append((n, modelPixels(rgb: resized.pixels, height: side, width: side, size: (side, side),
                                        mean: clip.config.imageMean, std: clip.config.imageStd)))
            if crops.count == batchSize { flush() }
        }
        flush()
        return embeddings
    }
}

/// The mask's bounding box as a square picture centered on it: mask pixels kept, everything else
/// `fill` (a color in [0, 1]). Nil when the mask is empty.
func maskedSquareCrop(_ picture: RGBImage, mask: BinaryMask, fill: [Float]) -> RGBImage? {
    guard let box = MaskBox(mask) else { return nil }
    let (x0, y0, x1, y1) = (box.x0, box.y0, box.x1, box.y1)
    let (w, h) = (x1 - x0 + 1, y1 - y0 + 1)
    let side = max(w, h), left = (side - w) / 2, top = (side - h) / 2
    let color = fill.map { UInt8((min(max($0, 0), 1) * 255).rounded()) }
    var pixels = [UInt8](repeating: 0, count: side * side * 3)
    for i in 0..<(side * side) { pixels[3 * i] = color[0]; pixels[3 * i + 1] = color[1]; pixels[3 * i + 2] = color[2] }
    for y in y0...y1 {
        for x in x0...x1 where mask.pixels[y * mask.width + x] != 0 {
            let to = ((y - y0 + top) * side + (x - x0 + left)) * 3, from = (y * picture.width + x) * 3
            pixels[to] = picture.pixels[from]; pixels[to + 1] = picture.pixels[from + 1]; pixels[to + 2] = picture.pixels[from + 2]
        }
    }
    return RGBImage(height: side, width: side, pixels: pixels)
}
