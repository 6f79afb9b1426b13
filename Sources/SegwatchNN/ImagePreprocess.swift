// The image input of the vision models (CLIP, DINOv2) as `segwatch embed --size HxW` gives it:
// the whole image resized (no crop, no aspect kept) with torch's bicubic interpolation, then
// normalized with the model's statistics.
import SegwatchTensor

/// 8-bit RGB `pixels` (`height x width x 3`, row-major) -> the normalized model input
/// `[1, 3, size.h, size.w]`: `x = u8 / 255`, resized with bicubic (align_corners=False, no
/// antialias, no clamping) unless it already has the size, then `(x - mean[c]) / std[c]`.
public func modelPixels(rgb pixels: [UInt8], height: Int, width: Int, size: (h: Int, w: Int),
                        mean: [Float], std: [Float]) -> Tensor {
    precondition(pixels.count == height * width * 3 && mean.count == 3 && std.count == 3,
                 "modelPixels: \(pixels.count) bytes for \(height)x\(width)x3")
    var planes = [Float](repeating: 0, count: 3 * height * width)
    for i in 0..<(height * width) {
        for c in 0..<3 { planes[c * height * width + i] = Float(pixels[i * 3 + c]) / 255 }
    }
    var x = Tensor(shape: [1, 3, height, width], values: planes)
    if (height, width) != size { x = interpolate(x, size: size, mode: .bicubic) }
    var values = x.toArray()
    let plane = size.h * size.w
    for c in 0..<3 {
        for i in 0..<plane { values[c * plane + i] = (values[c * plane + i] - mean[c]) / std[c] }
    }
    return Tensor(shape: [1, 3, size.h, size.w], values: values)
}
