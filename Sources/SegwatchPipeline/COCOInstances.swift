// Segment-text pairs from a COCO instances file (`instances_*.json`): each annotation's mask
// (polygons rasterized as pycocotools does, or RLE) with its category's name as its text.
import Foundation
import SegwatchSAM

/// pycocotools' `rleFrPoly` (maskApi.c): the mask of a polygon `xy` (x0, y0, x1, y1, ...) in
/// an `height x width` frame, exactly as COCO's masks are made: the outline upsampled five
/// times and walked, then the column crossings kept where they fall on pixel centers.
public func rleFromPolygon(_ xy: [Double], height h: Int, width w: Int) -> RLE {
    let k = xy.count / 2, scale = 5.0
    guard k > 0 else { return RLE(height: h, width: w, counts: [h * w]) }
    var x = (0..<k).map { Int(scale * xy[2 * $0] + 0.5) }, y = (0..<k).map { Int(scale * xy[2 * $0 + 1] + 0.5) }
    x.append(x[0])
    y.append(y[0])
    // Discrete points densely along the whole boundary.
    var u: [Int] = [], v: [Int] = []
    for j in 0..<k {
        var (xs, xe, ys, ye) = (x[j], x[j + 1], y[j], y[j + 1])
        let dx = abs(xe - xs), dy = abs(ys - ye)
        let flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye)
        if flip { swap(&xs, &xe); swap(&ys, &ye) }
        let s = dx >= dy ? Double(ye - ys) / Double(dx) : Double(xe - xs) / Double(dy)
        if dx >= dy {
            for d in 0...dx {
                let t = flip ? dx - d : d
                u.append(t + xs)
                v.append(Int(Double(ys) + s * Double(t) + 0.5))
            }
        } else {
            for d in 0...dy {
                let t = flip ? dy - d : d
                v.append(t + ys)
                u.append(Int(Double(xs) + s * Double(t) + 0.5))
            }
        }
    }
    // The points where the boundary crosses a column, downsampled.
    var starts: [Int] = []
    for j in 1..<max(u.count, 1) where u[j] != u[j - 1] {
        var xd = Double(u[j] < u[j - 1] ? u[j] : u[j] - 1)
        xd = (xd + 0.5) / scale - 0.5
        if xd.rounded(.down) != xd || xd < 0 || xd > Double(w - 1) { continue }
        var yd = Double(v[j] < v[j - 1] ? v[j] : v[j - 1])
        yd = (yd + 0.5) / scale - 0.5
        yd = (yd < 0 ? 0 : yd > Double(h) ? Double(h) : yd).rounded(.up)
        starts.append(Int(xd) * h + Int(yd))
    }
    // Sorted crossings, differenced into runs; a zero-length run merges its neighbours.
    var a = (starts + [h * w]).sorted()
    var previous = 0
    for j in a.indices { (a[j], previous) = (a[j] - previous, a[j]) }
    var counts = [a[0]], j = 1
    while j < a.count {
        if a[j] > 0 {
            counts.append(a[j])
            j += 1
        } else {
            j += 1
            if j < a.count { counts[counts.count - 1] += a[j]; j += 1 }
        }
    }
    return RLE(height: h, width: w, counts: counts)
}

/// The union of masks of one frame (pycocotools' `merge`).
public func mergeMasks(_ rles: [RLE]) -> RLE {
    guard let first = rles.first else { preconditionFailure("mergeMasks of no masks") }
    guard rles.count > 1 else { return first }
    var pixels = rleToMask(first).pixels
    for rle in rles.dropFirst() {
        for (i, p) in rleToMask(rle).pixels.enumerated() where p != 0 { pixels[i] = 1 }
    }
    return maskToRLE(BinaryMask(height: first.height, width: first.width, pixels: pixels))
}

/// One annotation of a COCO instances file, its mask decoded.
public struct COCOInstance: Sendable {
    /// The annotation's `id`, when it has one.
    public var id: Int?
    /// Where it stands in `annotations` (0-based).
    public var index: Int
    /// Its image's `file_name`.
    public var image: String
    public var mask: RLE
    /// Its category's name.
    public var category: String

    /// How messages name it.
    public var label: String { annotationLabel(id: id, index: index) }
}

private func annotationLabel(id: Int?, index: Int) -> String {
    id.map { "annotation \($0)" } ?? "annotation \(index + 1) (no id)"
}

/// Every annotation of a COCO instances file that has a mask, an image and a category; each
/// that has not is named (by its id) in `problems`.
public func readCOCOInstances(_ path: String) throws(PipelineError) -> (instances: [COCOInstance], problems: [String]) {
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw .unusable(path: path, reason: "cannot read: \(error.localizedDescription)") }
    guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any], let images = root["images"] as? [[String: Any]],
          let annotations = root["annotations"] as? [[String: Any]], let categories = root["categories"] as? [[String: Any]] else {
        throw .unusable(path: path, reason: "not a COCO instances file (an object with images, annotations and categories)")
    }
    var files: [Int: (name: String, height: Int, width: Int)] = [:]
    for image in images {
        if let id = image["id"] as? Int, let name = image["file_name"] as? String, let h = image["height"] as? Int, let w = image["width"] as? Int,
           h > 0, w > 0, h * w <= 1 << 28 {
            files[id] = (name, h, w)
        }
    }
    var names: [Int: String] = [:]
    for category in categories { if let id = category["id"] as? Int, let name = category["name"] as? String { names[id] = name } }
    var instances: [COCOInstance] = [], problems: [String] = []
    for (index, annotation) in annotations.enumerated() {
        let label = annotationLabel(id: annotation["id"] as? Int, index: index)
        guard let imageID = annotation["image_id"] as? Int, let image = files[imageID] else { problems.append("\(path): \(label): no image of its image_id"); continue }
        guard let categoryID = annotation["category_id"] as? Int, let name = names[categoryID] else {
            problems.append("\(path): \(label): no category of its category_id"); continue
        }
        let mask: RLE?
        switch annotation["segmentation"] {
        case let polygons as [[Double]] where !polygons.isEmpty && polygons.allSatisfy({ $0.count >= 6 && $0.count % 2 == 0 }):
            mask = mergeMasks(polygons.map { rleFromPolygon($0, height: image.height, width: image.width) })
        case let rle as [String: Any]:
            let size = rle["size"] as? [Int]
            if size != [image.height, image.width] {
                mask = nil
            } else if let counts = rle["counts"] as? String {
                mask = rleFromString(counts, height: image.height, width: image.width)
            } else if let counts = rle["counts"] as? [Int], counts.allSatisfy({ $0 >= 0 }), counts.reduce(0, +) == image.height * image.width {
                mask = RLE(height: image.height, width: image.width, counts: counts)
            } else {
                mask = nil
            }
        default:
            mask = nil
        }
        guard let mask else {
            problems.append("\(path): \(label): its segmentation is neither polygons (x, y lists of 3 points or more) nor RLE of its \(image.width)x\(image.height) image")
            continue
        }
        instances.append(COCOInstance(id: annotation["id"] as? Int, index: index, image: image.name, mask: mask, category: name))
    }
    return (instances, problems)
}

/// A COCO instances file's annotations as pairs: the image's `file_name`, the mask, the
/// category's name; each annotation that cannot be one is named (by its id) in `problems`.
public func cocoInstancePairs(_ path: String) throws(PipelineError) -> (pairs: [SegmentTextPair], problems: [String]) {
    let (instances, problems) = try readCOCOInstances(path)
    let pairs = instances.map { SegmentTextPair(image: $0.image, mask: $0.mask, texts: [$0.category], granularity: "object", line: $0.index + 1) }
    return (pairs, problems)
}
