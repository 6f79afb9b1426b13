import Foundation
import SegwatchSAM
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// One prompt case of a SAM parity fixture's `expected.json`.
struct SamCase: Decodable {
    struct Prompts: Decodable {
        var points: [[Double]]?
        var labels: [Int]?
        var box: [Double]?
        var mask_input: String?
    }
    var name: String
    var image: String
    var multimask: Bool
    var prompts: Prompts
    var input_tensors: [String: String]
}

struct SamFixture {
    let parity: ParityFixture
    let cases: [SamCase]
    let predictor: SamPredictor<CPUBackend>

    init(_ name: String) throws {
        parity = try ParityFixture(name)
        struct File: Decodable { var cases: [SamCase]; var checkpoint: String }
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: parity.directory.appendingPathComponent("expected.json")))
        cases = file.cases
        let model = try Sam(contentsOf: parity.directory.appendingPathComponent(file.checkpoint).path, backend: testBackend)
        predictor = SamPredictor(model: model)
    }

    func image(_ key: String) throws -> RGBImage {
        let t = try parity.tensor(key)
        return RGBImage(height: t.shape[0], width: t.shape[1], pixels: t.toArray().map { UInt8($0) })
    }
}

struct SamParityTests {
    static let fixtures = ["mobile_sam", "sam_vit"]

    // Pillow's fixed-point bilinear resize, reproduced to the bit (the tolerances leave no room
    // for another resize); every fixture image is downscaled or upscaled on one axis at least.
    @Test(arguments: fixtures)
    func resizeLongestSideIsPillowExact(fixture: String) throws {
        let f = try SamFixture(fixture)
        for key in Set(f.cases.map { $0.input_tensors["image_u8"]! }) {
            let resized = f.predictor.transform.apply(try f.image(key))
            let expected = try f.image(key.replacingOccurrences(of: "image_u8", with: "resized_image_u8"))
            #expect(resized.height == expected.height && resized.width == expected.width)
            let differing = zip(resized.pixels, expected.pixels).filter { $0 != $1 }.count
            #expect(differing == 0, "\(key): \(differing) of \(expected.pixels.count) bytes differ")
        }
    }

    // The encoder on the fixture's resized image, then every prompt case (points with the
    // padding point, boxes, box + points, mask input with and without points, multimask) in
    // original-image coordinates, against the official code's float64 outputs.
    @Test(arguments: fixtures)
    func everyPromptCaseMatchesTheOfficialCode(fixture: String) throws {
        let f = try SamFixture(fixture)
        var features: [String: SamImageFeatures<Tensor>] = [:]
        for c in f.cases {
            let imageKey = c.input_tensors["image_u8"]!
            if features[imageKey] == nil {
                let original = try f.parity.tensor(imageKey)
                let resized = try f.image(c.input_tensors["resized_image_u8"]!)
                let encoded = f.predictor.setResizedImage(resized, originalSize: (original.shape[0], original.shape[1]))
                let stem = imageKey.replacingOccurrences(of: ".image_u8", with: "")
                let comparison = try f.parity.check(encoded.embedding, key: "\(stem).image_embedding")
                #expect(comparison.passed, "\(comparison)")
                features[imageKey] = encoded
            }
            let points = zip(c.prompts.points ?? [], c.prompts.labels ?? []).map { (x: $0[0], y: $0[1], label: $1) }
            let box = c.prompts.box.map { (x0: $0[0], y0: $0[1], x1: $0[2], y1: $0[3]) }
            let mask = try c.prompts.mask_input.map { try f.parity.tensor($0) }
            let out = try f.predictor.predict(features[imageKey]!, points: points, box: box, maskInput: mask, multimask: c.multimask)
            var checked: [String] = []
            for (name, tensor) in [("low_res_logits", out.lowResLogits), ("iou_predictions", out.iouPredictions), ("mask_logits", out.maskLogits)] {
                let key = "\(c.name).\(name)"
                guard f.parity.tolerances[key] != nil else { continue }
                let comparison = try f.parity.check(tensor, key: key)
                #expect(comparison.passed, "\(comparison)")
                checked.append(name)
            }
            // Every case stores low-res logits and IoU predictions; some also the full-size logits.
            #expect(checked.starts(with: ["low_res_logits", "iou_predictions"]), "\(c.name): checked only \(checked)")
        }
    }
}

struct SamDecodeBatchingTests {
    // Guards `Sam.decode`'s grouping: prompts of different token counts (and more than one
    // decoder batch of the same count) in one call come back in the callers' order, each equal
    // to decoding it alone.
    @Test func mixedPromptsComeBackInOrder() throws {
        let f = try SamFixture("sam_vit")
        let model = f.predictor.model
        let resized = try f.image("bus.resized_image_u8")
        let embedding = f.predictor.setResizedImage(resized, originalSize: (480, 360)).embedding
        var prompts: [SamPrompt] = []
        for i in 0..<20 {
            let x = Double(40 + 30 * i), y = Double(500 - 20 * i)
            prompts.append(SamPrompt(points: [(x, y, 1)]))
        }
        prompts.insert(SamPrompt(box: (100, 200, 400, 700)), at: 3)
        prompts.insert(SamPrompt(points: [(300, 300, 1), (350, 420, 0)]), at: 11)
        let together = try model.decode(embedding, prompts: prompts, multimask: true)
        #expect(together.lowResLogits.shape == [prompts.count, 3, 256, 256])
        for (i, prompt) in prompts.enumerated() {
            let alone = try model.decode(embedding, prompts: [prompt], multimask: true)
            let logits = compare(together.lowResLogits.sliced(0, i..<i + 1), alone.lowResLogits, atol: 1e-4, name: "prompt \(i) logits")
            let ious = compare(together.iouPredictions.sliced(0, i..<i + 1), alone.iouPredictions, atol: 1e-5, name: "prompt \(i) IoU")
            #expect(logits.passed, "\(logits)")
            #expect(ious.passed, "\(ious)")
        }
    }
}
