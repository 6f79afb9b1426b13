import Foundation
import SegwatchMedia
import SegwatchTestSupport
import Testing

@Suite struct StillPicturesTests {
    /// The ffmpeg CLI's raw reading of a PNG: an independent decoder.
    private func ffmpegRaw(_ path: String, pixelFormat: String) throws -> Data {
        let result = try runProcess("/usr/bin/ffmpeg", ["-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", pixelFormat, "-"], timeout: 30)
        #expect(result.status == 0, "\(result.errorOutput)")
        return result.stdout
    }

    // Lossless in every layout: label indices must come back exactly, 16-bit ones included
    // (values above 255 catch a byte-order mistake).
    @Test func everyLayoutRoundTrips() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let (width, height) = (7, 5)
        let gray = (0..<(width * height)).map { UInt8(($0 * 37) % 256) }
        try writePNG(.gray8(gray), width: width, height: height, to: folder.path("g8.png"))
        #expect(Array(try ffmpegRaw(folder.path("g8.png"), pixelFormat: "gray")) == gray)

        let wide = (0..<(width * height)).map { UInt16(($0 * 2039) % 65536) }
        try writePNG(.gray16(wide), width: width, height: height, to: folder.path("g16.png"))
        let raw = Array(try ffmpegRaw(folder.path("g16.png"), pixelFormat: "gray16le"))
        #expect((0..<(width * height)).map { UInt16(raw[2 * $0]) | UInt16(raw[2 * $0 + 1]) << 8 } == wide)

        let rgb = (0..<(width * height * 3)).map { UInt8(($0 * 11) % 256) }
        try writePNG(.rgb24(rgb), width: width, height: height, to: folder.path("rgb.png"))
        #expect(Array(try ffmpegRaw(folder.path("rgb.png"), pixelFormat: "rgb24")) == rgb)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).sorted() == ["g16.png", "g8.png", "rgb.png"])
    }

    @Test func badRequestsAreErrors() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        #expect(throws: MediaError.self) { try writePNG(.gray8([1, 2, 3]), width: 2, height: 2, to: folder.path("short.png")) }
        #expect(throws: MediaError.self) { try writePNG(.gray8([]), width: 0, height: 0, to: folder.path("empty.png")) }
        #expect(throws: MediaError.self) { try writePNG(.gray8([0]), width: 1, height: 1, to: "/nonexistent/folder/x.png") }
    }

    // A JPEG that ffmpeg decodes to the picture within JPEG's loss: a smooth gradient of odd
    // size (the last chroma block is half outside) comes back within a few levels on average.
    @Test func jpegDecodesToThePicture() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let (width, height) = (37, 21)
        var rgb: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width { rgb += [UInt8(x * 255 / (width - 1)), UInt8(y * 255 / (height - 1)), UInt8((x + y) * 2)] }
        }
        let data = try encodeJPEG(rgb: rgb, width: width, height: height, name: "gradient")
        #expect(data.prefix(2) == Data([0xFF, 0xD8]) && data.suffix(2) == Data([0xFF, 0xD9]))
        try data.write(to: URL(fileURLWithPath: folder.path("g.jpg")))
        let decoded = Array(try ffmpegRaw(folder.path("g.jpg"), pixelFormat: "rgb24"))
        #expect(decoded.count == rgb.count)
        let error = zip(decoded, rgb).map { abs(Int($0) - Int($1)) }
        #expect(Double(error.reduce(0, +)) / Double(error.count) < 4, "mean error \(Double(error.reduce(0, +)) / Double(error.count))")
        #expect(throws: MediaError.self) { try encodeJPEG(rgb: [1, 2, 3], width: 2, height: 2, name: "short") }
    }
}
