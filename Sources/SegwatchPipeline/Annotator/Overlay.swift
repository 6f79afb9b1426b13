// The annotated picture: translucent colored masks, their outlines, and each segment's label in
// a real font, as `segwatch label --overlay` writes it and the video annotator will draw it.
import SegwatchSAM

/// A segment to draw: its mask, the text of its label, and the label's index for its color
/// (nil: unknown, drawn gray).
public struct OverlaySegment: Sendable {
    public var mask: RLE
    public var text: String
    public var colorIndex: Int?

    public init(mask: RLE, text: String, colorIndex: Int?) {
        self.mask = mask
        self.text = text
        self.colorIndex = colorIndex
    }
}

public struct OverlayStyle: Sendable {
    /// How much of a mask's color covers the picture, 0...1.
    public var opacity: Float = 0.45
    /// Outline width in pixels; nil: one pixel per 400 of the picture's short side, at least 1.
    public var outline: Int?
    /// The label box's background opacity.
    public var boxOpacity: Float = 0.75

    public init() {}
}

/// A color per label index, far apart for neighboring indices: hues stepped by the golden
/// ratio, fixed saturation and value, so a label keeps its color from picture to picture.
public func overlayColor(_ index: Int?) -> SIMD3<Float> {
    guard let index else { return SIMD3(160, 160, 160) }
    let hue = (Double(index) * 0.618_033_988_749_895).truncatingRemainder(dividingBy: 1) * 6
    let (s, v) = (0.7, 0.95)
    let f = hue - hue.rounded(.down)
    let (p, q, t) = (v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f)))
    let rgb: (Double, Double, Double)
    switch Int(hue) {
    case 0: rgb = (v, t, p)
    case 1: rgb = (q, v, p)
    case 2: rgb = (p, v, t)
    case 3: rgb = (p, q, v)
    case 4: rgb = (t, p, v)
    default: rgb = (v, p, q)
    }
    return SIMD3(Float(rgb.0 * 255), Float(rgb.1 * 255), Float(rgb.2 * 255))
}

/// Draws `segments` on `picture`: larger segments first, so smaller ones stay visible on top;
/// then the labels, each centered on its segment's box and kept inside the picture.
public func drawOverlay(_ picture: RGBImage, segments: [OverlaySegment], font: Font,
                        style: OverlayStyle = OverlayStyle()) throws(PipelineError) -> RGBImage {
    try OverlayLayer(height: picture.height, width: picture.width, segments: segments, font: font, style: style).apply(to: picture)
}

/// An overlay drawn once and applied to any number of pictures of its size (every frame of a
/// video between two analyses).
///
/// Each drawing step blends a pixel toward a color, `p += a (color - p)`; a sequence of them
/// is one affine map per pixel, `p -> scale p + offset`, which is what the layer keeps.
public struct OverlayLayer: Sendable {
    public let height: Int
    public let width: Int
    /// Per pixel: what is left of the picture's value.
    private var scale: [Float]
    /// Per pixel and channel: what the drawing adds.
    private var offset: [Float]

    public init(height: Int, width: Int, segments: [OverlaySegment], font: Font,
                style: OverlayStyle = OverlayStyle()) throws(PipelineError) {
        for (n, segment) in segments.enumerated() where segment.mask.height != height || segment.mask.width != width {
            throw .mismatch("overlay segment \(n) is \(segment.mask.width)x\(segment.mask.height); the picture is \(width)x\(height)")
        }
        self.height = height
        self.width = width
        var scale = [Float](repeating: 1, count: height * width)
        var offset = [Float](repeating: 0, count: 3 * height * width)
        func blend(_ pixel: Int, _ color: SIMD3<Float>, _ alpha: Float) {
            scale[pixel] *= 1 - alpha
            for c in 0..<3 { offset[3 * pixel + c] += alpha * (color[c] - offset[3 * pixel + c]) }
        }
        let thickness = style.outline ?? max(1, min(height, width) / 400)
        let areas = segments.map { areaFromRLE($0.mask) }
        let order = segments.indices.sorted { areas[$0] > areas[$1] }
        // One mask buffer for all segments, set and cleared along each mask's runs.
        var inside = [Bool](repeating: false, count: height * width)
        var boxes: [Int: (x0: Int, y0: Int, x1: Int, y1: Int)] = [:]
        for s in order {
            let color = overlayColor(segments[s].colorIndex)
            var box = (x0: width, y0: height, x1: -1, y1: -1)
            forEachPixel(segments[s].mask) { x, y in
                inside[y * width + x] = true
                blend(y * width + x, color, style.opacity)
                box = (min(box.x0, x), min(box.y0, y), max(box.x1, x), max(box.y1, y))
            }
            guard box.x1 >= 0 else { continue }
            boxes[s] = box
            // An outline pixel is inside the mask with some pixel within `thickness` (in x or y) outside it.
            let edge = SIMD3<Float>(color.x * 0.6, color.y * 0.6, color.z * 0.6)
            forEachPixel(segments[s].mask) { x, y in
                for d in 1...thickness {
                    let outside = x < d || y < d || x + d >= width || y + d >= height
                        || !inside[y * width + x - d] || !inside[y * width + x + d]
                        || !inside[(y - d) * width + x] || !inside[(y + d) * width + x]
                    if outside {
                        blend(y * width + x, edge, 1)
                        break
                    }
                }
            }
            forEachPixel(segments[s].mask) { x, y in inside[y * width + x] = false }
        }
        let pad = max(2, font.pixelSize / 5)
        for s in order {
            guard let box = boxes[s], !segments[s].text.isEmpty else { continue }
            let textWidth = font.width(of: segments[s].text)
            let (boxWidth, boxHeight) = (textWidth + 2 * pad, font.lineHeight + 2 * pad)
            let left = min(max(0, (box.x0 + box.x1 + 1) / 2 - boxWidth / 2), max(0, width - boxWidth))
            let top = min(max(0, (box.y0 + box.y1 + 1) / 2 - boxHeight / 2), max(0, height - boxHeight))
            let background = overlayColor(segments[s].colorIndex) * 0.3
            for y in top..<min(height, top + boxHeight) {
                for x in left..<min(width, left + boxWidth) { blend(y * width + x, background, style.boxOpacity) }
            }
            font.render(segments[s].text, x: left + pad, baseline: top + pad + font.ascender) { x, y, coverage in
                guard x >= 0, y >= 0, x < width, y < height else { return }
                blend(y * width + x, SIMD3(255, 255, 255), Float(coverage) / 255)
            }
        }
        self.scale = scale
        self.offset = offset
    }

    /// The picture with the overlay drawn on it; the picture must have the layer's size.
    public func apply(to picture: RGBImage) throws(PipelineError) -> RGBImage {
        guard picture.height == height, picture.width == width else {
            throw .mismatch("an overlay of \(width)x\(height) cannot be drawn on a \(picture.width)x\(picture.height) picture")
        }
        var pixels = [UInt8](repeating: 0, count: 3 * height * width)
        picture.pixels.withUnsafeBufferPointer { source in
            for i in 0..<(height * width) {
                let a = scale[i]
                for c in 0..<3 {
                    let value = a * Float(source[3 * i + c]) + offset[3 * i + c]
                    pixels[3 * i + c] = UInt8(min(max(value.rounded(), 0), 255))
                }
            }
        }
        return RGBImage(height: height, width: width, pixels: pixels)
    }
}

/// Calls `body(x, y)` for every pixel of a COCO RLE mask (column-major runs).
func forEachPixel(_ rle: RLE, _ body: (Int, Int) -> Void) {
    var position = 0, set = false
    for count in rle.counts {
        if set {
            for p in position..<(position + count) { body(p / rle.height, p % rle.height) }
        }
        position += count
        set.toggle()
    }
}
