// Ports segment_anything/predictor.py (SamPredictor) with Sam.preprocess and
// Sam.postprocess_masks: prompts in original-image coordinates in, masks at the image's size out.
import SegwatchTensor

/// One image, encoded: the embedding and the sizes that map prompts and masks.
public struct SamImageFeatures<Value: Sendable>: Sendable {
    /// `[1, 256, 64, 64]`.
    public let embedding: Value
    public let originalSize: (height: Int, width: Int)
    /// The resized image's size, before padding.
    public let inputSize: (height: Int, width: Int)
}

/// The predictor's answer for one prompt.
public struct SamPrediction: Sendable {
    /// `[C, 256, 256]`.
    public var lowResLogits: Tensor
    /// `[C]`.
    public var iouPredictions: Tensor
    /// `[C, H, W]` at the original image's size; the mask is `> 0`.
    public var maskLogits: Tensor
}

public struct SamPredictor<B: Backend>: Sendable {
    public let model: Sam<B>
    public let transform: ResizeLongestSide

    public init(model: Sam<B>) {
        self.model = model
        transform = ResizeLongestSide(model.imageSize)
    }

    /// `set_image`: resize (Pillow bilinear), normalize, pad, encode.
    public func setImage(_ image: RGBImage) throws -> SamImageFeatures<B.Value> {
        let size = transform.targetSize(height: image.height, width: image.width)
        guard size.height > 0, size.width > 0 else {
            throw SamError.invalidInput("a \(image.width)x\(image.height) image is too thin to resize to \(model.imageSize) on its long side")
        }
        return setResizedImage(transform.apply(image), originalSize: (image.height, image.width))
    }

    /// `set_torch_image` of an already resized image (long side 1024): the encoder apart from
    /// the resize.
    public func setResizedImage(_ resized: RGBImage, originalSize: (height: Int, width: Int)) -> SamImageFeatures<B.Value> {
        let input = preprocess(resized)
        return SamImageFeatures(embedding: model.encode(model.backend.upload(input)), originalSize: originalSize,
                                inputSize: (resized.height, resized.width))
    }

    /// `Sam.preprocess`: `(pixel - mean) / std` per channel, zero-padded to 1024x1024, `[1, 3, S, S]`.
    func preprocess(_ image: RGBImage) -> Tensor {
        let side = model.imageSize
        precondition(image.height <= side && image.width <= side, "image \(image.width)x\(image.height) larger than \(side)")
        let result = Tensor(zeros: [1, 3, side, side])
        let out = result.pointer
        for c in 0..<3 {
            let mean = model.pixelMean[c], std = model.pixelStd[c]
            for y in 0..<image.height {
                for x in 0..<image.width {
                    out[(c * side + y) * side + x] = (Float(image.pixels[(y * image.width + x) * 3 + c]) - mean) / std
                }
            }
        }
        return result
    }

    /// `predict`: points `(x, y, label)` and a box `(x0, y0, x1, y1)` in original-image pixels,
    /// a `[1, 256, 256]` mask of logits from an earlier prediction.
    public func predict(_ features: SamImageFeatures<B.Value>, points: [(x: Double, y: Double, label: Int)] = [],
                        box: (x0: Double, y0: Double, x1: Double, y1: Double)? = nil, maskInput: Tensor? = nil,
                        multimask: Bool) throws -> SamPrediction {
        let (h, w) = features.originalSize
        // `predict` casts the transformed coordinates to float32 before the model sees them.
        func transformed(_ x: Double, _ y: Double) -> (x: Double, y: Double) {
            let p = transform.apply(x: x, y: y, originalHeight: h, originalWidth: w)
            return (Double(Float(p.x)), Double(Float(p.y)))
        }
        var prompt = SamPrompt(maskInput: maskInput)
        prompt.points = points.map {
            let p = transformed($0.x, $0.y)
            return (p.x, p.y, $0.label)
        }
        if let box {
            let a = transformed(box.x0, box.y0), b = transformed(box.x1, box.y1)
            prompt.box = (a.x, a.y, b.x, b.y)
        }
        let out = try model.decode(features.embedding, prompts: [prompt], multimask: multimask)
        let backend = model.backend
        let lowRes = backend.download(out.lowResLogits)
        let masks = backend.download(postprocess(out.lowResLogits, features))
        return SamPrediction(lowResLogits: lowRes.reshaped(Array(lowRes.shape.dropFirst())),
                             iouPredictions: backend.download(out.iouPredictions).reshaped([lowRes.shape[1]]),
                             maskLogits: masks.reshaped(Array(masks.shape.dropFirst())))
    }

    /// `postprocess` of one plane at a time on the host, for `features`' image.
    public func maskUpscaling(_ features: SamImageFeatures<B.Value>) -> MaskUpscaling {
        MaskUpscaling(lowRes: (model.promptEncoder.maskInputSize.h, model.promptEncoder.maskInputSize.w), modelSize: model.imageSize,
                      inputSize: features.inputSize, originalSize: features.originalSize)
    }

    /// The masks of `lowRes`'s prompts (`[P, C, 256, 256]` logits) made on the backend: upscaled
    /// (`postprocess`), thresholded at 0 and counted at the stability thresholds of
    /// `stabilityOffset` (`Backend.maskBits`), a batch of prompts at a time, only batches that
    /// hold a prompt `including` accepts. `body` gets each batch's prompts and bits: prompt p's
    /// mask c is plane `(p - range.lowerBound) * C + c`. False, with nothing done, when one
    /// prompt's masks would not fit one of the backend's values: upscale on the host then.
    public func maskBits(_ lowRes: B.Value, features: SamImageFeatures<B.Value>, stabilityOffset: Double,
                         including: (Int) -> Bool = { _ in true }, _ body: (Range<Int>, MaskBits) throws -> Void) rethrows -> Bool {
        let backend = model.backend, shape = backend.shape(lowRes)
        let batch = postprocessBatch(features, planes: shape[1])
        guard batch > 0 else { return false }
        let counted = stabilityThresholds(offset: stabilityOffset)
        for first in stride(from: 0, to: shape[0], by: batch) {
            let range = first..<min(first + batch, shape[0])
            guard range.contains(where: including) else { continue }
            try body(range, backend.maskBits(postprocess(backend.slice(lowRes, dim: 0, range), features), threshold: 0, counting: counted))
        }
        return true
    }

    /// How many prompts' masks (`planes` each) `postprocess` takes at once on the backend: at
    /// most 16, their largest stage within 256 MB and the backend's largest value; 0 when one
    /// prompt's do not fit.
    func postprocessBatch(_ features: SamImageFeatures<B.Value>, planes: Int) -> Int {
        let side = model.imageSize, (height, width) = features.originalSize
        let perPrompt = planes * max(side * side, height * width) * 4
        guard perPrompt <= model.backend.maximumValueBytes else { return 0 }
        return max(1, min(16, min(256 << 20, model.backend.maximumValueBytes) / perPrompt))
    }

    /// `Sam.postprocess_masks`: `[B, C, 256, 256]` logits, bilinear to 1024, the padding
    /// cropped, bilinear to the original size: `[B, C, H, W]`.
    public func postprocess(_ lowRes: B.Value, _ features: SamImageFeatures<B.Value>) -> B.Value {
        let backend = model.backend
        let side = model.imageSize
        var masks = backend.interpolate(lowRes, size: (side, side), mode: .bilinear)
        masks = backend.slice(backend.slice(masks, dim: 2, 0..<features.inputSize.height), dim: 3, 0..<features.inputSize.width)
        return backend.interpolate(masks, size: (features.originalSize.height, features.originalSize.width), mode: .bilinear)
    }
}

/// `Sam.postprocess_masks` of one plane of low-resolution logits, on the host: the same values
/// as `SamPredictor.postprocess`, but the 1024x1024 stage computed only where the padding crop
/// keeps it (a 16:9 frame keeps 56 % of it), and no plane larger than the image kept.
public struct MaskUpscaling: Sendable {
    /// Low resolution -> the model's input, only the resized image's part.
    private let toInput: PlaneInterpolation
    /// That part -> the original image; nil when they are the same size.
    private let toImage: PlaneInterpolation?

    public init(lowRes: (h: Int, w: Int), modelSize: Int, inputSize: (height: Int, width: Int), originalSize: (height: Int, width: Int)) {
        toInput = PlaneInterpolation(input: lowRes, size: (modelSize, modelSize), keeping: (inputSize.height, inputSize.width), mode: .bilinear)
        toImage = inputSize == originalSize ? nil
            : PlaneInterpolation(input: (inputSize.height, inputSize.width), size: (originalSize.height, originalSize.width), mode: .bilinear)
    }

    public var lowResCount: Int { toInput.input.h * toInput.input.w }
    public var outputCount: Int { (toImage ?? toInput).output.h * (toImage ?? toInput).output.w }
    /// The floats of scratch `apply` needs.
    public var scratchCount: Int {
        toInput.scratchCount + (toImage.map { toInput.output.h * toInput.output.w + $0.scratchCount } ?? 0)
    }

    /// The logits of `plane` (`lowResCount` floats) at the original size, into `target`
    /// (`outputCount` floats), using `scratch` (`scratchCount` floats).
    public func apply(_ plane: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        guard let toImage else { return toInput.apply(plane, into: target, rows: scratch) }
        let resized = scratch + toInput.scratchCount
        toInput.apply(plane, into: resized, rows: scratch)
        toImage.apply(resized, into: target, rows: resized + toInput.output.h * toInput.output.w)
    }
}
