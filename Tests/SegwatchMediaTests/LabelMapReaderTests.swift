import Foundation
import SegwatchMedia
import SegwatchTestSupport
import Testing

@Suite struct LabelMapReaderTests {
    @Test func grayMapsReadBackExactly() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let (width, height) = (7, 5)
        let gray = (0..<(width * height)).map { UInt8(($0 * 37) % 256) }
        try writePNG(.gray8(gray), width: width, height: height, to: folder.path("g8.png"))
        #expect(try readLabelMap(folder.path("g8.png")) == LabelMap(width: width, height: height, values: gray.map(UInt16.init), bitDepth: 8))

        let wide = (0..<(width * height)).map { UInt16(($0 * 2039) % 65536) }
        try writePNG(.gray16(wide), width: width, height: height, to: folder.path("g16.png"))
        #expect(try readLabelMap(folder.path("g16.png")) == LabelMap(width: width, height: height, values: wide, bitDepth: 16))
    }

    /// Pascal VOC's annotations are palette PNGs: the class is the palette index, whatever
    /// color the palette gives it. The file is written byte by byte here (stored deflate).
    @Test func paletteIndicesAreTheClasses() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let (width, height) = (5, 3)
        let indices: [UInt8] = [0, 1, 2, 3, 255, 4, 4, 0, 1, 2, 255, 255, 0, 3, 1]
        // Colors chosen so that no gray or RGB reading could give the indices back.
        var palette = [UInt8](repeating: 0, count: 256 * 3)
        for i in 0..<256 { palette[3 * i] = UInt8((i * 97 + 13) % 256); palette[3 * i + 1] = 200; palette[3 * i + 2] = UInt8(i % 7) }
        try Data(palettePNG(width: width, height: height, indices: indices, palette: palette)).write(to: folder.url.appendingPathComponent("p.png"))
        #expect(try readLabelMap(folder.path("p.png")) == LabelMap(width: width, height: height, values: indices.map(UInt16.init), bitDepth: 8))
    }

    @Test func colorPicturesAndNonPicturesAreRefused() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try writePNG(.rgb24([UInt8](repeating: 9, count: 12)), width: 2, height: 2, to: folder.path("rgb.png"))
        do {
            _ = try readLabelMap(folder.path("rgb.png"))
            Issue.record("an RGB picture was read as a label map")
        } catch {
            #expect("\(error)".contains("rgb.png") && "\(error)".contains("one class index per pixel"), "\(error)")
        }
        try Data("not a picture".utf8).write(to: folder.url.appendingPathComponent("text.png"))
        #expect(throws: MediaError.self) { try readLabelMap(folder.path("text.png")) }
        #expect(throws: MediaError.self) { try readLabelMap(folder.path("missing.png")) }
    }
}

/// A minimal palette PNG: IHDR (color type 3), PLTE, one IDAT of stored deflate blocks, IEND.
func palettePNG(width: Int, height: Int, indices: [UInt8], palette: [UInt8]) -> [UInt8] {
    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        return ~crc
    }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(UInt32(data.count)) + body + be32(crc32(body))
    }
    var raw = [UInt8]()
    for y in 0..<height { raw += [0] + indices[(y * width)..<((y + 1) * width)] }
    var (a, b): (UInt32, UInt32) = (1, 0)
    for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
    let length = UInt16(raw.count)
    let zlib: [UInt8] = [0x78, 0x01, 0x01, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
        + raw + be32(b << 16 | a)
    let header = be32(UInt32(width)) + be32(UInt32(height)) + [8, 3, 0, 0, 0]
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("PLTE", palette)
        + chunk("IDAT", zlib) + chunk("IEND", [])
}
