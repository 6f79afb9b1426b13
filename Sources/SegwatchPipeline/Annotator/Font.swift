// Text for overlays: glyphs rasterized by FreeType from a real font file.
import CFreeType
import Foundation

/// One antialiased glyph: coverage 0...255, `width x rows`, placed `left` right of the pen and
/// `top` above the baseline; the pen then moves `advance` pixels.
struct Glyph {
    let width: Int
    let rows: Int
    let left: Int
    let top: Int
    let advance: Int
    let coverage: [UInt8]
}

/// A font face at one pixel size. FreeType objects are not thread-safe: one task uses a `Font`.
public final class Font {
    public let path: String
    public let pixelSize: Int
    /// Pixels from the baseline up to the top of the tallest glyph, and down to the lowest.
    public let ascender: Int
    public let descender: Int
    private var library: FT_Library?
    private var face: FT_Face?
    private var glyphs: [Unicode.Scalar: Glyph] = [:]

    /// Fonts tried when none is given: DejaVu (Debian's fonts-dejavu-core, Fedora, Arch), then
    /// Liberation.
    public static let defaultPaths = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf",
    ]

    /// `path`, else `$SEGWATCH_FONT`, else the first of `defaultPaths` that exists.
    public static func locate(_ path: String? = nil) throws(PipelineError) -> String {
        if let path { return path }
        if let path = ProcessInfo.processInfo.environment["SEGWATCH_FONT"], !path.isEmpty { return path }
        guard let found = defaultPaths.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw .unusable(path: defaultPaths[0], reason: "no font for overlay labels: install fonts-dejavu-core, or give --font FILE (any TrueType or OpenType font)")
        }
        return found
    }

    public init(path: String, pixelSize: Int) throws(PipelineError) {
        guard (4...512).contains(pixelSize) else { throw .mismatch("font size \(pixelSize) px; expected 4...512") }
        self.path = path
        self.pixelSize = pixelSize
        guard FT_Init_FreeType(&library) == 0, let library else { throw .unusable(path: path, reason: "FreeType did not start") }
        let opened = FT_New_Face(library, path, 0, &face)
        guard opened == 0, let face else {
            FT_Done_FreeType(library)
            self.library = nil
            throw .unusable(path: path, reason: FileManager.default.fileExists(atPath: path)
                ? "not a font FreeType reads (error \(opened)); expected a TrueType or OpenType file" : "no such font file")
        }
        guard FT_Set_Pixel_Sizes(face, 0, FT_UInt(pixelSize)) == 0 else {
            FT_Done_Face(face)
            FT_Done_FreeType(library)
            (self.face, self.library) = (nil, nil)
            throw .unusable(path: path, reason: "the font has no \(pixelSize) px size")
        }
        let metrics = face.pointee.size.pointee.metrics
        ascender = Int(metrics.ascender + 63) >> 6
        descender = Int(-metrics.descender + 63) >> 6
    }

    deinit {
        if let face { FT_Done_Face(face) }
        if let library { FT_Done_FreeType(library) }
    }

    /// Pixels from the top of a line to its bottom.
    public var lineHeight: Int { ascender + descender }

    /// The glyph of `scalar` (the font's missing-glyph box when it has none).
    func glyph(_ scalar: Unicode.Scalar) -> Glyph {
        if let known = glyphs[scalar] { return known }
        var made = Glyph(width: 0, rows: 0, left: 0, top: 0, advance: pixelSize / 2, coverage: [])
        if let face, FT_Load_Char(face, FT_ULong(scalar.value), segwatch_ft_load_render) == 0, let slot = face.pointee.glyph {
            let bitmap = slot.pointee.bitmap
            let (width, rows, pitch) = (Int(bitmap.width), Int(bitmap.rows), Int(bitmap.pitch))
            var coverage = [UInt8](repeating: 0, count: width * rows)
            if Int(bitmap.pixel_mode) == Int(segwatch_ft_pixel_mode_gray), let buffer = bitmap.buffer {
                for y in 0..<rows {
                    let row = pitch >= 0 ? buffer + y * pitch : buffer + (rows - 1 - y) * -pitch
                    for x in 0..<width { coverage[y * width + x] = row[x] }
                }
            }
            made = Glyph(width: width, rows: rows, left: Int(slot.pointee.bitmap_left), top: Int(slot.pointee.bitmap_top),
                         advance: Int(slot.pointee.advance.x + 32) >> 6, coverage: coverage)
        }
        glyphs[scalar] = made
        return made
    }

    /// The advance of `text` in pixels.
    public func width(of text: String) -> Int {
        text.unicodeScalars.reduce(0) { $0 + glyph($1).advance }
    }

    /// Calls `ink(x, y, coverage)` for every pixel of `text` drawn with its baseline at `y`,
    /// starting at `x`.
    func render(_ text: String, x: Int, baseline: Int, ink: (Int, Int, UInt8) -> Void) {
        var pen = x
        for scalar in text.unicodeScalars {
            let g = glyph(scalar)
            for row in 0..<g.rows {
                for column in 0..<g.width where g.coverage[row * g.width + column] != 0 {
                    ink(pen + g.left + column, baseline - g.top + row, g.coverage[row * g.width + column])
                }
            }
            pen += g.advance
        }
    }
}
