import SegwatchBackends
import ArgumentParser
import Foundation
import SegwatchCheckpoint
import SegwatchMedia
import SegwatchSAM
import SegwatchService
import SegwatchTensor

/// `segwatch segment`: SAM on one picture, from prompts or (`--auto`) everywhere.
struct Segment: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment one picture with SAM: from point, box and mask prompts, or every object with --auto.",
        discussion: """
            Prompts are in the picture's pixel coordinates, as SamPredictor.predict takes them. \
            The checkpoint is loaded unchanged: Meta's sam_vit_b/l/h .pth or MobileSAM's \
            mobile_sam.pt.

            --out FILE.json writes masks as COCO RLE with their scores and boxes (with --auto, \
            the official SamAutomaticMaskGenerator records). --out FILE.safetensors writes the \
            raw tensors image_embedding (1x256x64x64), low_res_logits (Cx256x256), \
            iou_predictions (C) and mask_logits (CxHxW), where C is 3 with --multimask, else 1. \
            Without --out a table of the masks is printed.
            """)

    @Argument(help: "A picture (PNG, JPEG: anything FFmpeg decodes), or a video with --frame.")
    var image: String

    @Option(help: "SAM checkpoint: sam_vit_b/l/h .pth, MobileSAM's mobile_sam.pt, or a model name (segwatch models list).", transform: ModelArgument.sam)
    var sam: String

    @Option(help: "Frame of a video to segment, counting from 0.")
    var frame = 0

    @Option(name: .customLong("point"), help: "A point prompt X,Y[,LABEL]; LABEL 1 is foreground (default), 0 background. Repeatable.")
    var points: [String] = []

    @Option(help: "A box prompt X0,Y0,X1,Y1.")
    var box: String?

    @Option(help: "Low-resolution mask logits from an earlier prediction: a safetensors file with tensor mask_input, 1x256x256.")
    var maskInput: String?

    @Flag(help: "Return SAM's three masks for ambiguous prompts instead of one.")
    var multimask = false

    @Flag(help: "Find every object with the automatic mask generator instead of prompts.")
    var auto = false

    @OptionGroup(title: "Automatic mask generator, with --auto")
    var generator: GeneratorOptions

    @Option(help: "Where to write: FILE.json (COCO RLE masks) or FILE.safetensors (raw tensors; prompts only).")
    var out: String?

    @Option(help: "Threads for inference.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard frame >= 0 else { throw ValidationError("--frame must be 0 or more, not \(frame)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
        if auto {
            guard points.isEmpty, box == nil, maskInput == nil else {
                throw ValidationError("--auto finds objects itself; it takes no --point, --box or --mask-input")
            }
            if let out, out.hasSuffix(".safetensors") {
                throw ValidationError("--auto writes JSON (COCO RLE masks); --out must end in .json, not '\(out)'")
            }
        } else if points.isEmpty && box == nil && maskInput == nil {
            throw ValidationError("give at least one prompt (--point, --box or --mask-input), or --auto")
        }
        if let out, !out.hasSuffix(".json") && !out.hasSuffix(".safetensors") {
            throw ValidationError("--out must end in .json or .safetensors, not '\(out)'")
        }
        _ = try parsedPoints()
        _ = try parsedBox()
        try generator.options.validate()
    }

    func parsedPoints() throws -> [(x: Double, y: Double, label: Int)] {
        try points.map { text in
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2 || parts.count == 3, let x = parts[0], let y = parts[1], x.isFinite, y.isFinite else {
                throw ValidationError("--point must be X,Y or X,Y,LABEL with numbers, not '\(text)'")
            }
            let label = parts.count == 3 ? parts[2] : 1
            guard label == 0 || label == 1 else {
                throw ValidationError("--point label must be 1 (foreground) or 0 (background), not '\(text)'")
            }
            return (x, y, Int(label!))
        }
    }

    func parsedBox() throws -> (x0: Double, y0: Double, x1: Double, y1: Double)? {
        guard let box else { return nil }
        let v = box.split(separator: ",", omittingEmptySubsequences: false).compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard v.count == 4, v.allSatisfy(\.isFinite) else { throw ValidationError("--box must be X0,Y0,X1,Y1 with numbers, not '\(box)'") }
        return (v[0], v[1], v[2], v[3])
    }

    func run() throws {
        let backend = try backendOptions.open(threads: threads)
        // The generator's host-side work (post-processing, NMS) on the model's threads too.
        try backend.runOnHost { () throws in try runReporting {
            let picture = try loadRGBImage(image, frame: frame)
            let model = try Sam(contentsOf: sam, backend: backend)
            let predictor = SamPredictor(model: model)
            if auto {
                try runGenerator(predictor, picture)
            } else {
                try runPrompts(predictor, picture)
            }
        } }
    }

    private func runPrompts(_ predictor: SamPredictor<ComputeBackend>, _ picture: RGBImage) throws {
        let maskTensor = try maskInput.map { try loadMaskInput($0, size: predictor.model.promptEncoder.maskInputSize) }
        let features = try predictor.setImage(picture)
        let prediction = try predictor.predict(features, points: try parsedPoints(), box: try parsedBox(),
                                               maskInput: maskTensor, multimask: multimask)
        if let out, out.hasSuffix(".safetensors") {
            try writeSafeTensors([("image_embedding", predictor.model.backend.download(features.embedding)), ("low_res_logits", prediction.lowResLogits),
                                  ("iou_predictions", prediction.iouPredictions), ("mask_logits", prediction.maskLogits)], to: out)
            return
        }
        let masks = (0..<prediction.iouPredictions.count).map { c -> (BinaryMask, Float) in
            let logits = prediction.maskLogits.selected(0, c).contiguous()
            let mask = BinaryMask(logits: UnsafeBufferPointer(start: logits.pointer, count: logits.count),
                                  height: picture.height, width: picture.width)
            return (mask, prediction.iouPredictions.pointer[c])
        }
        if let out {
            let records = masks.map { mask, score in
                PromptMaskRecord(segmentation: CocoRLE(maskToRLE(mask)), area: mask.area, bbox: mask.bboxXYWH, predicted_iou: Double(score))
            }
            try writeJSON(records, to: out)
        } else {
            print("mask  predicted_iou      area  bbox [x, y, w, h]")
            for (i, (mask, score)) in masks.enumerated() {
                print(String(format: "%4d  %13.4f  %8d  ", i, score, mask.area) + "\(mask.bboxXYWH)")
            }
        }
    }

    private func runGenerator(_ predictor: SamPredictor<ComputeBackend>, _ picture: RGBImage) throws {
        let generator = try SamAutomaticMaskGenerator(predictor: predictor, options: self.generator.options)
        let progress = Progress.onTerminal()
        let masks = try generator.generate(picture) { done, total in progress.update("segmenting: \(done)/\(total) batches") }
        progress.clear()
        let records = masks.map { mask in
            AutoMaskRecord(segmentation: CocoRLE(mask.rle), area: mask.area, bbox: boxXYXYToXYWH(mask.box),
                           predicted_iou: Double(mask.predictedIou), point_coords: [[mask.pointCoords.x, mask.pointCoords.y]],
                           stability_score: Double(mask.stabilityScore), crop_box: boxXYXYToXYWH(mask.cropBox))
        }
        if let out {
            try writeJSON(records, to: out)
        } else {
            print("mask  predicted_iou  stability      area  bbox [x, y, w, h]")
            for (i, r) in records.enumerated() {
                print(String(format: "%4d  %13.4f  %9.4f  %8d  ", i, r.predicted_iou, r.stability_score, r.area) + "\(r.bbox)")
            }
        }
    }

    /// The `mask_input` tensor of `path`: 1x256x256 logits (a leading 1 may be dropped or doubled).
    private func loadMaskInput(_ path: String, size: (h: Int, w: Int)) throws -> Tensor {
        let tensor = try StateDict.load(path).tensor("mask_input")
        let accepted = [[1, size.h, size.w], [size.h, size.w], [1, 1, size.h, size.w]]
        guard accepted.contains(tensor.shape) else {
            throw CheckpointError.shapeMismatch(file: path, key: "mask_input", expected: [1, size.h, size.w], actual: tensor.shape)
        }
        return tensor.reshaped([1, size.h, size.w])
    }
}

/// The generator's parameters as flags, named as `SamAutomaticMaskGenerator`'s arguments.
struct GeneratorOptions: ParsableArguments {
    @Option(help: "Points per side of the grid.") var pointsPerSide = 32
    @Option(help: "Points run through the mask decoder at once.") var pointsPerBatch = 64
    @Option(help: "Drop masks whose predicted IoU is not above this.") var predIouThresh = 0.88
    @Option(help: "Drop masks whose stability score is below this.") var stabilityScoreThresh = 0.95
    @Option(help: "Logit offset for the stability score.") var stabilityScoreOffset = 1.0
    @Option(help: "Box IoU above which NMS drops a mask within a crop.") var boxNmsThresh = 0.7
    @Option(help: "Layers of crops: layer i has 2^i x 2^i crops.") var cropNLayers = 0
    @Option(help: "Box IoU above which NMS drops a mask across crops.") var cropNmsThresh = 0.7
    @Option(help: "Overlap between neighbouring crops, as a fraction of the short side.") var cropOverlapRatio = 512.0 / 1500.0
    @Option(help: "Points per side shrink by this factor per crop layer.") var cropNPointsDownscaleFactor = 1
    @Option(help: "Fill holes and remove islands smaller than this many pixels (0 = off).") var minMaskRegionArea = 0

    var options: MaskGeneratorOptions {
        var o = MaskGeneratorOptions()
        o.pointsPerSide = pointsPerSide
        o.pointsPerBatch = pointsPerBatch
        o.predIouThresh = predIouThresh
        o.stabilityScoreThresh = stabilityScoreThresh
        o.stabilityScoreOffset = stabilityScoreOffset
        o.boxNmsThresh = boxNmsThresh
        o.cropNLayers = cropNLayers
        o.cropNmsThresh = cropNmsThresh
        o.cropOverlapRatio = cropOverlapRatio
        o.cropNPointsDownscaleFactor = cropNPointsDownscaleFactor
        o.minMaskRegionArea = minMaskRegionArea
        return o
    }
}

/// A prompted mask in the JSON output.
struct PromptMaskRecord: Encodable {
    var segmentation: CocoRLE
    var area: Int
    var bbox: [Int]
    var predicted_iou: Double
}

/// One `SamAutomaticMaskGenerator.generate` record, with the official field names.
struct AutoMaskRecord: Encodable {
    var segmentation: CocoRLE
    var area: Int
    var bbox: [Int]
    var predicted_iou: Double
    var point_coords: [[Double]]
    var stability_score: Double
    var crop_box: [Int]
}
