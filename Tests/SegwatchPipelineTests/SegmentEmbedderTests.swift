import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
@testable import SegwatchPipeline
import SegwatchSAM
import SegwatchTensor
import Testing

/// numpy's values (`make_pipeline_references.py`).
enum References {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("pipeline_references.safetensors").path
    static let tensors = Result { try StateDict.load(file) }

    static func tensor(_ key: String) throws -> Tensor { try tensors.get().tensor(key) }

    static func rows(_ key: String) throws -> [[Float]] {
        let t = try tensor(key)
        let width = t.shape.dropFirst().reduce(1, *), values = t.toArray()
        return (0..<t.shape[0]).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
    }

    /// `[N, H, W]` 0/1 masks as COCO RLE.
    static func masks(_ key: String) throws -> [RLE] {
        let t = try tensor(key)
        let (h, w) = (t.shape[1], t.shape[2])
        return try rows(key).map { maskToRLE(BinaryMask(height: h, width: w, pixels: $0.map { $0 > 0.5 ? 1 : 0 })) }
    }
}

func expectClose(_ actual: [Float], _ expected: [Float], atol: Float = 1e-5, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
    #expect(actual.count == expected.count && worst <= atol, "\(what): max difference \(worst)", sourceLocation: sourceLocation)
}

struct PatchCoverageTests {
    @Test(arguments: ["wide", "tiny"])
    func matchesTheRefinedGridReference(_ name: String) throws {
        let masks = try References.masks("\(name).masks")
        let features = try References.tensor("\(name).features")
        for (n, (mask, expected)) in zip(masks, try References.rows("\(name).coverage")).enumerated() {
            expectClose(patchCoverage(mask, grid: (features.shape[1], features.shape[2])), expected, "\(name) mask \(n)")
        }
    }

    // By hand: a 4x4 frame under a 2x2 grid, the pixel at (1, 1) fills a quarter of patch
    // (0, 0); a 3x3 frame under 2x2, the centre pixel lies a quarter in each patch, so each
    // gets 0.25 / 2.25 of its area.
    @Test func handCounted() {
        var mask = BinaryMask(height: 4, width: 4)
        mask.pixels[1 * 4 + 1] = 1
        #expect(patchCoverage(maskToRLE(mask), grid: (2, 2)) == [0.25, 0, 0, 0])
        var centre = BinaryMask(height: 3, width: 3)
        centre.pixels[4] = 1
        expectClose(patchCoverage(maskToRLE(centre), grid: (2, 2)), [Float](repeating: 0.25 / 2.25, count: 4), "centre")
    }
}

struct SegmentEmbedderTests {
    private func features(_ name: String) throws -> DenseFeatures {
        let masks = try References.tensor("\(name).masks")
        return DenseFeatures(dense: try References.tensor("\(name).features"), frame: (masks.shape[1], masks.shape[2]))
    }

    // Features on a window of the grid (what a tracked frame computes around the segments it
    // embeds): a mask inside the window pools the same patches with the same weights as on
    // the whole grid, so its embedding is the reference's; a mask reaching outside pools only
    // the window's part of it, and one wholly outside gets none.
    @Test func aWindowPoolsItsPatchesAsTheWholeGridDoes() throws {
        let (height, width, grid, dimension) = (40, 60, (h: 4, w: 6), 8)
        let values = (0..<(grid.h * grid.w * dimension)).map { Float(($0 &* 2654435761) % 1999) / 1000 - 1 }
        let whole = DenseFeatures(dense: Tensor(shape: [1, grid.h, grid.w, dimension], values: values), frame: (height, width))
        let window = PatchWindow(grid: grid, rows: 1..<3, columns: 2..<5)
        let cut = Tensor(shape: [1, grid.h, grid.w, dimension], values: values).sliced(1, window.rows).sliced(2, window.columns).contiguous()
        let windowed = DenseFeatures(dense: cut, frame: (height, width), window: window)
        func box(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int) -> RLE {
            var mask = BinaryMask(height: height, width: width)
            for y in y0..<y1 { for x in x0..<x1 { mask.pixels[y * width + x] = 1 } }
            return maskToRLE(mask)
        }
        // Patches are 10x10 pixels: inside is within rows 1..<3, columns 2..<5; across reaches
        // column 1; outside lies in row 0.
        let inside = box(23, 12, 47, 28), across = box(15, 12, 30, 20), outside = box(0, 0, 9, 9)
        let embedder = MaskPooledEmbedder()
        let onWhole = try embedder.embed(whole, masks: [inside, across])
        let onWindow = try embedder.embed(windowed, masks: [inside, across, outside])
        expectClose(try #require(onWindow[0]), try #require(onWhole[0]), "a mask inside the window")
        let part = try embedder.embed(whole, masks: [box(20, 12, 30, 20)])
        expectClose(try #require(onWindow[1]), try #require(part[0]), "the window's part of a mask across its edge")
        #expect(onWindow[2] == nil)
    }

    @Test(arguments: ["wide", "tiny"])
    func weightedAverageOfPatchFeatures(_ name: String) throws {
        let embeddings = try MaskPooledEmbedder().embed(features(name), masks: References.masks("\(name).masks"))
        let expected = try References.rows("\(name).embeddings")
        #expect(embeddings.count == 5)
        for n in [0, 1, 2, 4] { expectClose(try #require(embeddings[n]), expected[n], "\(name) segment \(n)") }
        // The empty mask has no embedding: nil, not NaN.
        #expect(embeddings[3] == nil)
    }

    @Test(arguments: ["wide", "tiny"])
    func learnedHeadFromAFile(_ name: String) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-head-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("head.safetensors").path
        try writeSafeTensors(try ["proj.weight", "proj.bias", "norm.weight", "norm.bias"].map {
            (name: $0, tensor: try References.tensor("\(name).head.\($0)"))
        }, to: file)
        let head = try SegmentHead(contentsOf: file)
        #expect(head.inputDimension == 6 && head.outputDimension == 4)
        let embeddings = try MaskPooledEmbedder(head: head).embed(features(name), masks: References.masks("\(name).masks"))
        let expected = try References.rows("\(name).head_embeddings")
        for n in [0, 1, 2, 4] { expectClose(try #require(embeddings[n]), expected[n], "\(name) headed segment \(n)") }
        #expect(embeddings[3] == nil)
    }

    @Test func wrongHeadsAreRefused() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("segwatch-head-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let cases: [([(String, [Int])], String)] = [
            ([("proj.weight", [4, 6]), ("proj.bias", [5])], "proj.bias is [5]"),
            ([("proj.weight", [4, 6]), ("norm.weight", [6])], "come together"),
            ([("proj.weight", [4, 6]), ("norm.weight", [4]), ("norm.bias", [4])], "norm.weight is [4]"),
            ([("proj.bias", [4])], "no proj.weight"),
            ([("proj.weight", [4, 6]), ("extra", [1])], "unexpected tensor 'extra'"),
            ([("proj.weight", [24])], "proj.weight is [24]"),
        ]
        for (i, (tensors, needle)) in cases.enumerated() {
            let file = folder.appendingPathComponent("head\(i).safetensors").path
            try writeSafeTensors(tensors.map { (name: $0.0, tensor: Tensor(zeros: $0.1)) }, to: file)
            #expect { try SegmentHead(contentsOf: file) } throws: { "\($0)".contains(needle) && "\($0)".contains(file) }
        }
        #expect(throws: PipelineError.self) { try SegmentHead(contentsOf: folder.appendingPathComponent("missing.safetensors").path) }
        // A head of the wrong width for the features is refused at use.
        let head = SegmentHead(weight: Tensor(zeros: [4, 7]))
        let features = try features("wide")
        #expect { try MaskPooledEmbedder(head: head).embed(features, masks: []) } throws: { "\($0)".contains("7") }
    }

    @Test func masksOfAnotherSizeAreRefused() throws {
        let other = maskToRLE(BinaryMask(height: 5, width: 5))
        #expect { try MaskPooledEmbedder().embed(features("wide"), masks: [other]) } throws: { "\($0)".contains("5x5") }
    }
}

/// The dense grid: the short side at `clipSize`, up to 4:1; longer pictures scaled down whole.
struct DenseGridTests {
    @Test func commonAspectsKeepTheShortSide() {
        #expect(denseGridFor(height: 272, width: 640, patch: 16, clipSize: 448) == (28, 66))
        #expect(denseGridFor(height: 640, width: 272, patch: 16, clipSize: 448) == (66, 28))
        #expect(denseGridFor(height: 100, width: 400, patch: 16, clipSize: 448) == (28, 112))
        #expect(denseGridFor(height: 7, width: 7, patch: 14, clipSize: 224) == (16, 16))
    }

    // A 200x2 video once asked for 78,400 tokens per frame.
    @Test(arguments: [(2, 200), (200, 2), (1, 10_000), (3, 4096), (10_000, 1)])
    func extremeAspectsAreCappedKeepingTheirShape(height: Int, width: Int) {
        let grid = denseGridFor(height: height, width: width, patch: 16, clipSize: 448)
        #expect(grid.h >= 1 && grid.w >= 1 && grid.h * grid.w <= 4 * 28 * 28, "\(grid)")
        // The long side stays the long side, and the aspect is kept as far as whole patches allow.
        let aspect = Double(max(height, width)) / Double(min(height, width))
        let gridAspect = Double(max(grid.h, grid.w)) / Double(min(grid.h, grid.w))
        #expect((height >= width) == (grid.h >= grid.w))
        #expect(min(grid.h, grid.w) == 1 || abs(gridAspect / aspect - 1) < 0.35, "\(grid) for \(height)x\(width)")
    }
}
