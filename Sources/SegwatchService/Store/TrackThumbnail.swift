import Foundation
import SegwatchMedia
import SegwatchPipeline
import SegwatchSAM
import SegwatchStore

/// The picture a stored track shows in search results: its best observation's box with a
/// margin, the mask's outline drawn on it, shrunk (area-averaged) to at most `maxSide` pixels a
/// side, as JPEG. `rgb` is the frame, `mask.height x mask.width` packed RGB bytes.
public func trackThumbnail(rgb: [UInt8], mask: BinaryMask, maxSide: Int = 160) throws(MediaError) -> Thumbnail? {
    let (height, width) = (mask.height, mask.width)
    guard rgb.count == height * width * 3, let box = MaskBox(mask) else { return nil }
    // MaskBox's far edges are inclusive.
    let margin = max(4, (max(box.x1 + 1 - box.x0, box.y1 + 1 - box.y0) * 15) / 100)
    let (x0, y0) = (max(0, box.x0 - margin), max(0, box.y0 - margin))
    let (x1, y1) = (min(width, box.x1 + 1 + margin), min(height, box.y1 + 1 + margin))
    let (cropWidth, cropHeight) = (x1 - x0, y1 - y0)
    let scale = min(1, Double(maxSide) / Double(max(cropWidth, cropHeight)))
    let (outWidth, outHeight) = (max(1, Int((Double(cropWidth) * scale).rounded())), max(1, Int((Double(cropHeight) * scale).rounded())))

    // Area averages of the picture and of the mask; the outline is drawn at the thumbnail's own
    // scale (an inside pixel next to an outside one), one pixel wide however ragged the mask.
    var out = [UInt8](repeating: 0, count: outWidth * outHeight * 3), inside = [Bool](repeating: false, count: outWidth * outHeight)
    for oy in 0..<outHeight {
        let sy0 = y0 + oy * cropHeight / outHeight, sy1 = max(sy0 + 1, y0 + (oy + 1) * cropHeight / outHeight)
        for ox in 0..<outWidth {
            let sx0 = x0 + ox * cropWidth / outWidth, sx1 = max(sx0 + 1, x0 + (ox + 1) * cropWidth / outWidth)
            var sum = (0, 0, 0), covered = 0
            for y in sy0..<sy1 {
                for x in sx0..<sx1 {
                    let i = (y * width + x) * 3
                    sum = (sum.0 + Int(rgb[i]), sum.1 + Int(rgb[i + 1]), sum.2 + Int(rgb[i + 2]))
                    covered += Int(mask.pixels[y * width + x] != 0 ? 1 : 0)
                }
            }
            let n = (sy1 - sy0) * (sx1 - sx0), o = oy * outWidth + ox
            (out[3 * o], out[3 * o + 1], out[3 * o + 2]) = (UInt8(sum.0 / n), UInt8(sum.1 / n), UInt8(sum.2 / n))
            inside[o] = 2 * covered >= n
        }
    }
    func isInside(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < outWidth && y < outHeight && inside[y * outWidth + x] }
    for y in 0..<outHeight {
        for x in 0..<outWidth where inside[y * outWidth + x] && !(isInside(x - 1, y) && isInside(x + 1, y) && isInside(x, y - 1) && isInside(x, y + 1)) {
            // Yellow, which reads on most scenes.
            let o = 3 * (y * outWidth + x)
            (out[o], out[o + 1], out[o + 2]) = (255, 220, 0)
        }
    }
    return Thumbnail(format: "jpeg", data: try encodeJPEG(rgb: out, width: outWidth, height: outHeight, name: "a track's thumbnail"))
}
