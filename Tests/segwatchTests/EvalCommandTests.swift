import Foundation
import SegwatchMedia
import SegwatchTestSupport
import Testing

@Suite struct EvalCommandTests {
    private func writeMaps(_ folder: TemporaryFolder, _ maps: [(String, [UInt8], Int, Int)], into sub: String) throws {
        try FileManager.default.createDirectory(atPath: folder.path(sub), withIntermediateDirectories: true)
        for (name, values, width, height) in maps {
            try writePNG(.gray8(values), width: width, height: height, to: folder.path("\(sub)/\(name).png"))
        }
    }

    private func scores(_ result: ProcessResult) throws -> [String: Any] {
        #expect(result.status == 0, "\(result.errorOutput)")
        return try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
    }

    private func close(_ value: Any?, _ expected: Double) -> Bool {
        (value as? Double).map { abs($0 - expected) < 1e-9 } ?? false
    }

    /// Image x: truth `0 0 1 / 1 2 255`, prediction `0 1 1 / 1 unknown 0`; image y: truth
    /// `2 2`, prediction `2 2`. Summed: truth areas 2 2 3, predicted 1 3 2, intersections 1 2 2;
    /// IoU 1/2, 2/3, 2/3; accuracies 1/2, 1, 2/3; aAcc 5/7;
    /// fwIoU 2/7 * 1/2 + 2/7 * 2/3 + 3/7 * 2/3 = 13/21. Image x alone: aAcc 3/5,
    /// mIoU (1/2 + 2/3 + 0) / 3.
    @Test func scoresHandMadeMapsAsComputedByHand() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try writeMaps(folder, [("x", [0, 0, 1, 1, 2, 255], 3, 2), ("y", [2, 2], 2, 1)], into: "gt")
        try writeMaps(folder, [("x", [0, 1, 1, 1, 255, 0], 3, 2), ("y", [2, 2], 2, 1)], into: "pred")
        try "a\nb|bee  # two names\n\n# a comment\nc\n".write(toFile: folder.path("classes.txt"), atomically: true, encoding: .utf8)
        let result = try runProcess(segwatch, ["eval", "--gt", folder.path("gt"), "--pred", folder.path("pred"), "--classes",
                                               folder.path("classes.txt"), "--json", "--per-image", folder.path("images.csv")], timeout: 60)
        let json = try scores(result)
        #expect(close(json["mean_iou"], (0.5 + 2.0 / 3 + 2.0 / 3) / 3))
        #expect(close(json["mean_accuracy"], (0.5 + 1 + 2.0 / 3) / 3))
        #expect(close(json["pixel_accuracy"], 5.0 / 7))
        #expect(close(json["frequency_weighted_iou"], 13.0 / 21))
        #expect(json["images"] as? Int == 2)
        let classes = try #require(json["classes"] as? [[String: Any]])
        #expect(classes.map { $0["name"] as? String } == ["a", "b", "c"])
        #expect(classes.map { $0["truth_pixels"] as? Int } == [2, 2, 3] && classes.map { $0["predicted_pixels"] as? Int } == [1, 3, 2])
        let rows = try String(contentsOfFile: folder.path("images.csv"), encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(rows.count == 3 && rows[0].first == "image")
        #expect(rows[1][0].hasSuffix("x.png") && rows[1][3] == "5" && Double(rows[1][4]) == 0.6)
        #expect(abs((Double(rows[1][5]) ?? 0) - (0.5 + 2.0 / 3) / 3) < 1e-6)

        let table = try runProcess(segwatch, ["eval", "--gt", folder.path("gt"), "--pred", folder.path("pred"), "--classes",
                                              folder.path("classes.txt")], timeout: 60)
        #expect(table.status == 0 && table.output.contains("mIoU  61.11") && table.output.contains("aAcc  71.43"), "\(table.output)")
    }

    /// ADE20K's convention: truth 0 is "other" (ignored) and class v is stored as v + 1.
    /// Truth `0 1 2 3` reduces to `ignore 0 1 2`; prediction `2 0 1 1`: class 0 right, class 1
    /// right, class 2 predicted 1. IoU: 1, 1/2, 0; aAcc 2/3.
    @Test func reduceZeroLabel() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try writeMaps(folder, [("z", [0, 1, 2, 3], 4, 1)], into: "gt")
        try writeMaps(folder, [("z", [2, 0, 1, 1], 4, 1)], into: "pred")
        try "a\nb\nc\n".write(toFile: folder.path("classes.txt"), atomically: true, encoding: .utf8)
        let json = try scores(try runProcess(segwatch, ["eval", "--gt", folder.path("gt"), "--pred", folder.path("pred"), "--classes",
                                                        folder.path("classes.txt"), "--reduce-zero-label", "--json"], timeout: 60))
        let classes = try #require(json["classes"] as? [[String: Any]])
        #expect(close(classes[0]["iou"], 1) && close(classes[1]["iou"], 0.5) && close(classes[2]["iou"], 0))
        #expect(close(json["pixel_accuracy"], 2.0 / 3))
    }

    @Test func badInputsAreOneClearLine() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try writeMaps(folder, [("x", [0, 1, 2, 0], 2, 2), ("y", [0, 0], 2, 1)], into: "gt")
        try writeMaps(folder, [("x", [0, 1, 2, 0], 2, 2)], into: "partial")
        try writeMaps(folder, [("x", [0, 1], 2, 1), ("y", [0, 0], 2, 1)], into: "small")
        try writeMaps(folder, [("x", [0, 1, 7, 0], 2, 2), ("y", [0, 0], 2, 1)], into: "seven")
        try FileManager.default.createDirectory(atPath: folder.path("rgb"), withIntermediateDirectories: true)
        try writePNG(.rgb24([UInt8](repeating: 1, count: 12)), width: 2, height: 2, to: folder.path("rgb/x.png"))
        try writePNG(.rgb24([UInt8](repeating: 1, count: 6)), width: 2, height: 1, to: folder.path("rgb/y.png"))
        try "a\nb\nc\n".write(toFile: folder.path("classes.txt"), atomically: true, encoding: .utf8)
        let cases: [(String, String, String)] = [
            ("gt", "partial", "lacks 1 of the 2"),
            ("gt", "small", "is 2x1"),
            ("gt", "seven", "holds 7"),
            ("seven", "gt", "ground truth holds 7"),
            ("gt", "rgb", "one class index per pixel"),
            ("missing", "gt", "is not a folder"),
        ]
        for (gt, pred, needle) in cases {
            let result = try runProcess(segwatch, ["eval", "--gt", folder.path(gt), "--pred", folder.path(pred),
                                                   "--classes", folder.path("classes.txt")], timeout: 60)
            let lines = result.errorOutput.split(separator: "\n")
            #expect(result.status == 1 && lines.count == 1 && lines[0].hasPrefix("segwatch: ") && lines[0].contains(needle),
                    "\(gt) vs \(pred): \(result.errorOutput)")
        }
        let neither = try runProcess(segwatch, ["eval", "--gt", folder.path("gt"), "--classes", folder.path("classes.txt")], timeout: 30)
        #expect(neither.status != 0 && neither.errorOutput.contains("--pred"))
        let noModels = try runProcess(segwatch, ["eval", "--gt", folder.path("gt"), "--images", folder.path("gt"),
                                                 "--classes", folder.path("classes.txt")], timeout: 30)
        #expect(noModels.status != 0 && noModels.errorOutput.contains("--sam"))
        let noClasses = try runProcess(segwatch, ["eval", "--gt", folder.path("gt"), "--pred", folder.path("gt"),
                                                  "--classes", folder.path("none.txt")], timeout: 30)
        #expect(noClasses.status == 1 && noClasses.errorOutput.contains("none.txt"))
    }

    /// Labeling on the fly scores exactly what `label --map-out` then `eval --pred` scores.
    @Test func imagesModeAgreesWithLabelThenEval() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let fixtures = Fixtures.root
        try FileManager.default.createDirectory(atPath: folder.path("images"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: LabelCommandTests.image, toPath: folder.path("images/street.png"))
        // Ground truth: sky above row 100, road below row 250, car between.
        let (width, height) = (480, 322)
        try writeMaps(folder, [("street", (0..<(width * height)).map { i in i / width < 100 ? 2 : i / width >= 250 ? 1 : 0 }, width, height)],
                      into: "gt")
        try "car|automobile\nroad\nsky\n".write(toFile: folder.path("classes.txt"), atomically: true, encoding: .utf8)
        let models = ["--sam", fixtures.appendingPathComponent("mobile_sam/mobile_sam.pt").path,
                      "--clip", fixtures.appendingPathComponent("clip_hf").path, "--threads", "2",
                      "--cache", folder.path("cache")] + LabelCommandTests.generator
        let onTheFly = try scores(try runProcess(segwatch, ["eval", "--gt", folder.path("gt"), "--images", folder.path("images"),
                                                            "--classes", folder.path("classes.txt"), "--json",
                                                            "--per-image", folder.path("images.csv")] + models, timeout: 300))
        try FileManager.default.createDirectory(atPath: folder.path("pred"), withIntermediateDirectories: true)
        let label = try runProcess(segwatch, ["label", folder.path("images/street.png"), "--vocab", folder.path("classes.txt"),
                                              "--map-out", folder.path("pred/street.png")] + models, timeout: 300)
        #expect(label.status == 0, "\(label.errorOutput)")
        let fromFiles = try scores(try runProcess(segwatch, ["eval", "--gt", folder.path("gt"), "--pred", folder.path("pred"),
                                                             "--classes", folder.path("classes.txt"), "--json"], timeout: 60))
        #expect(NSDictionary(dictionary: onTheFly) == NSDictionary(dictionary: fromFiles))
        let classes = try #require(onTheFly["classes"] as? [[String: Any]])
        #expect(classes.map { $0["truth_pixels"] as? Int } == [150 * width, 72 * width, 100 * width])
        let rows = try String(contentsOfFile: folder.path("images.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 2 && Int(rows[1].split(separator: ",")[6]) ?? 0 > 0, "\(rows)")
    }
}
