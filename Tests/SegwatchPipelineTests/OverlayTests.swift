import Foundation
@testable import SegwatchPipeline
import SegwatchSAM
import Testing

struct FontTests {
    @Test func rendersInkOfTheRightProportions() throws {
        let font = try Font(path: try Font.locate(), pixelSize: 20)
        #expect(font.width(of: "WWWW") > font.width(of: "iiii"))
        #expect(font.width(of: "ab") == font.width(of: "a") + font.width(of: "b"))
        #expect(font.ascender > 0 && font.descender > 0 && font.lineHeight <= 2 * 20 + 4)
        var ink: [(Int, Int)] = []
        font.render("Hg", x: 0, baseline: 30) { x, y, _ in ink.append((x, y)) }
        // H sits on the baseline; g hangs below it.
        #expect(ink.contains { $0.1 < 30 - 10 } && ink.contains { $0.1 > 30 })
        #expect(ink.allSatisfy { $0.0 >= 0 && $0.0 < font.width(of: "Hg") + 2 })
    }

    @Test func badFontFilesAreNamed() throws {
        #expect(throws: PipelineError.unusable(path: "/nonexistent/font.ttf", reason: "no such font file")) {
            try Font(path: "/nonexistent/font.ttf", pixelSize: 12)
        }
        let junk = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-junk-\(getpid()).ttf")
        try Data("not a font".utf8).write(to: junk)
        defer { try? FileManager.default.removeItem(at: junk) }
        do {
            _ = try Font(path: junk.path, pixelSize: 12)
            Issue.record("a text file was read as a font")
        } catch {
            #expect("\(error)".contains(junk.path) && "\(error)".contains("TrueType"))
        }
    }
}

struct OverlayTests {
    func rect(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, height: Int, width: Int) -> RLE {
        var mask = BinaryMask(height: height, width: width)
        for y in y0..<y1 { for x in x0..<x1 { mask.pixels[y * width + x] = 1 } }
        return maskToRLE(mask)
    }

    /// A gray 60x40 picture, a large segment over x 0..<30 and a small one over x 40..<50,
    /// y 10..<20: mask interiors are the blend, outlines the darker color, the rest untouched,
    /// and each label box holds white text.
    @Test func masksOutlinesAndLabelsLandWhereExpected() throws {
        let (width, height) = (60, 40)
        let picture = RGBImage(height: height, width: width, pixels: [UInt8](repeating: 100, count: width * height * 3))
        let font = try Font(path: try Font.locate(), pixelSize: 10)
        var style = OverlayStyle()
        style.outline = 1
        let segments = [OverlaySegment(mask: rect(0, 0, 30, 40, height: height, width: width), text: "car", colorIndex: 0),
                        OverlaySegment(mask: rect(40, 10, 50, 20, height: height, width: width), text: "", colorIndex: nil)]
        let out = try drawOverlay(picture, segments: segments, font: font, style: style)
        func pixel(_ x: Int, _ y: Int) -> [Int] { (0..<3).map { Int(out.pixels[(y * width + x) * 3 + $0]) } }
        func expected(_ color: SIMD3<Float>, alpha: Float, over base: Float = 100) -> [Int] {
            (0..<3).map { Int((base + alpha * (color[$0] - base)).rounded()) }
        }
        let car = overlayColor(0), unknown = overlayColor(nil)
        #expect(pixel(3, 37) == expected(car, alpha: 0.45))
        #expect(pixel(29, 37) == expected(car * 0.6, alpha: 1), "the right edge of the large mask")
        #expect(pixel(0, 20) == expected(car * 0.6, alpha: 1), "the picture's border is the mask's edge")
        #expect(pixel(44, 14) == expected(unknown, alpha: 0.45))
        #expect(pixel(40, 10) == expected(unknown * 0.6, alpha: 1))
        #expect(pixel(55, 35) == [100, 100, 100] && pixel(35, 2) == [100, 100, 100])
        // "car" at the large mask's center (15, 20): white ink inside its box.
        let box = (8..<23).flatMap { x in (12..<28).map { y in pixel(x, y) } }
        #expect(box.contains { $0.allSatisfy { $0 > 200 } }, "no white text in the label box")
        #expect(!(0..<width).flatMap { x in (0..<height).map { y in pixel(x, y) } }.filter { $0.allSatisfy { $0 > 200 } }.isEmpty)
        // The empty label draws no box: nothing near-white around the small mask.
        #expect(!(40..<50).flatMap { x in (10..<20).map { y in pixel(x, y) } }.contains { $0.allSatisfy { $0 > 200 } })
    }

    @Test func colorsAreStableAndDistinct() {
        #expect(overlayColor(3) == overlayColor(3))
        let colors = (0..<20).map(overlayColor)
        for i in 0..<20 { for j in 0..<i { #expect(colors[i] != colors[j]) } }
    }

    @Test func maskOfAnotherSizeIsRefused() throws {
        let picture = RGBImage(height: 4, width: 4, pixels: [UInt8](repeating: 0, count: 48))
        let font = try Font(path: try Font.locate(), pixelSize: 10)
        #expect(throws: PipelineError.self) {
            try drawOverlay(picture, segments: [OverlaySegment(mask: rect(0, 0, 1, 1, height: 5, width: 4), text: "x", colorIndex: 0)], font: font)
        }
    }
}
