// Ports segment_anything/utils/transforms.py (ResizeLongestSide) with the image resize it
// calls: torchvision's `resize` of a PIL image, which is Pillow's `Image.resize(BILINEAR)`
// (libImaging/Resample.c), reproduced to the bit: the models are tested with tolerances that
// leave no room for a different resize.

/// An 8-bit RGB image, row-major `height x width x 3`.
public struct RGBImage: Sendable, Equatable {
    public let height: Int
    public let width: Int
    public var pixels: [UInt8]

    public init(height: Int, width: Int, pixels: [UInt8]) {
        precondition(pixels.count == height * width * 3, "RGB image \(height)x\(width) with \(pixels.count) bytes")
        self.height = height
        self.width = width
        self.pixels = pixels
    }

    /// The pixels in `x0..<x1, y0..<y1`.
    public func cropped(x0: Int, y0: Int, x1: Int, y1: Int) -> RGBImage {
        var out = [UInt8]()
        out.reserveCapacity((x1 - x0) * (y1 - y0) * 3)
        for y in y0..<y1 { out += pixels[(y * width + x0) * 3..<(y * width + x1) * 3] }
        return RGBImage(height: y1 - y0, width: x1 - x0, pixels: out)
    }
}

/// `ResizeLongestSide(target)`: scales images so the longest side is `target`, and
/// coordinates with them.
public struct ResizeLongestSide: Sendable {
    public let target: Int

    public init(_ target: Int) { self.target = target }

    /// `get_preprocess_shape`: Python float arithmetic, `int(x + 0.5)`.
    public func targetSize(height: Int, width: Int) -> (height: Int, width: Int) {
        let scale = Double(target) / Double(max(height, width))
        return (Int(Double(height) * scale + 0.5), Int(Double(width) * scale + 0.5))
    }

    /// `apply_image`.
    public func apply(_ image: RGBImage) -> RGBImage {
        let size = targetSize(height: image.height, width: image.width)
        return pilBilinearResize(image, height: size.height, width: size.width)
    }

    /// `apply_coords`: per-axis scale by the rounded size ratio, in float64.
    public func apply(x: Double, y: Double, originalHeight: Int, originalWidth: Int) -> (x: Double, y: Double) {
        let size = targetSize(height: originalHeight, width: originalWidth)
        return (x * (Double(size.width) / Double(originalWidth)), y * (Double(size.height) / Double(originalHeight)))
    }
}

/// Pillow's fixed-point resampling: weights scaled by 2^22.
private let precisionBits = 22

/// Pillow's `precompute_coeffs` with the bilinear (triangle) filter, then
/// `normalize_coeffs_8bpc`: for each output index, the first input index, the tap count and
/// the fixed-point weights (`kernelSize` per output).
private struct ResampleCoefficients {
    var first: [Int] = []
    var count: [Int] = []
    var weights: [Int32] = []
    let kernelSize: Int

    init(input: Int, output: Int) {
        let scale = Double(input) / Double(output)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale
        kernelSize = Int(support.rounded(.up)) * 2 + 1
        weights = [Int32](repeating: 0, count: output * kernelSize)
        var k = [Double](repeating: 0, count: kernelSize)
        for xx in 0..<output {
            let center = (Double(xx) + 0.5) * scale
            // C casts truncate toward zero.
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), input) - xmin
            var total = 0.0
            for x in 0..<xmax {
                var t = (Double(x + xmin) - center + 0.5) / filterScale
                if t < 0 { t = -t }
                let w = t < 1 ? 1 - t : 0
                k[x] = w
                total += w
            }
            for x in 0..<xmax {
                let w = total != 0 ? k[x] / total : k[x]
                weights[xx * kernelSize + x] = Int32(w < 0 ? Int(-0.5 + w * Double(1 << precisionBits)) : Int(0.5 + w * Double(1 << precisionBits)))
            }
            first.append(xmin)
            count.append(max(xmax, 0))
        }
    }

    /// `clip8(ss)` of one weighted sum starting at `stride`-spaced samples.
    @inline(__always)
    func apply(_ index: Int, _ source: UnsafePointer<UInt8>, stride: Int) -> UInt8 {
        var sum: Int32 = 1 << (precisionBits - 1)
        let base = index * kernelSize, start = first[index]
        for t in 0..<count[index] {
            sum &+= Int32(source[(start + t) * stride]) &* weights[base + t]
        }
        if sum >= Int32(1) << (precisionBits + 8) { return 255 }
        if sum <= 0 { return 0 }
        return UInt8(truncatingIfNeeded: sum >> precisionBits)
    }
}

/// `Image.resize((width, height), Image.BILINEAR)` of Pillow on an RGB image: horizontal pass
/// first, then vertical, each skipped when its size does not change.
public func pilBilinearResize(_ image: RGBImage, height: Int, width: Int) -> RGBImage {
    var current = image
    if width != image.width {
        let coefficients = ResampleCoefficients(input: image.width, output: width)
        var out = [UInt8](repeating: 0, count: image.height * width * 3)
        image.pixels.withUnsafeBufferPointer { input in
            for y in 0..<image.height {
                let row = input.baseAddress! + y * image.width * 3
                for x in 0..<width {
                    for c in 0..<3 { out[(y * width + x) * 3 + c] = coefficients.apply(x, row + c, stride: 3) }
                }
            }
        }
        current = RGBImage(height: image.height, width: width, pixels: out)
    }
    if height != image.height {
        let coefficients = ResampleCoefficients(input: current.height, output: height)
        var out = [UInt8](repeating: 0, count: height * width * 3)
        current.pixels.withUnsafeBufferPointer { input in
            for y in 0..<height {
                for x in 0..<width * 3 {
                    out[y * width * 3 + x] = coefficients.apply(y, input.baseAddress! + x, stride: width * 3)
                }
            }
        }
        current = RGBImage(height: height, width: width, pixels: out)
    }
    return current
}
