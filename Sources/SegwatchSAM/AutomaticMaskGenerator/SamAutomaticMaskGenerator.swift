// Ports segment_anything/automatic_mask_generator.py (SamAutomaticMaskGenerator) of
// segment-anything 1.0: a grid of point prompts over the image and over crops of it, the
// masks filtered by predicted IoU and stability, de-duplicated by box NMS, small regions
// cleaned up.
import SegwatchTensor
import Synchronization

/// `SamAutomaticMaskGenerator`'s parameters, with its defaults.
public struct MaskGeneratorOptions: Sendable, Equatable {
    public var pointsPerSide = 32
    public var pointsPerBatch = 64
    public var predIouThresh = 0.88
    public var stabilityScoreThresh = 0.95
    public var stabilityScoreOffset = 1.0
    public var boxNmsThresh = 0.7
    public var cropNLayers = 0
    public var cropNmsThresh = 0.7
    public var cropOverlapRatio = 512.0 / 1500.0
    public var cropNPointsDownscaleFactor = 1
    public var minMaskRegionArea = 0

    public init() {}

    /// Throws a `SamError.invalidInput` naming the first parameter out of its range.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws {
            if !ok { throw SamError.invalidInput(message) }
        }
        try check((1...1024).contains(pointsPerSide), "points-per-side must be in 1...1024, not \(pointsPerSide)")
        try check((1...4096).contains(pointsPerBatch), "points-per-batch must be in 1...4096, not \(pointsPerBatch)")
        try check((0...4).contains(cropNLayers), "crop-n-layers must be in 0...4, not \(cropNLayers)")
        try check(cropNPointsDownscaleFactor >= 1, "crop-n-points-downscale-factor must be at least 1, not \(cropNPointsDownscaleFactor)")
        try check(minMaskRegionArea >= 0, "min-mask-region-area must not be negative")
        for (name, value) in [("pred-iou-thresh", predIouThresh), ("stability-score-thresh", stabilityScoreThresh),
                              ("stability-score-offset", stabilityScoreOffset), ("box-nms-thresh", boxNmsThresh),
                              ("crop-nms-thresh", cropNmsThresh), ("crop-overlap-ratio", cropOverlapRatio)] {
            try check(value.isFinite, "\(name) must be a finite number, not \(value)")
        }
        try check((0..<1).contains(cropOverlapRatio), "crop-overlap-ratio must be in [0, 1), not \(cropOverlapRatio)")
    }
}

/// One mask of the generator's output, with the official record's fields.
public struct GeneratedMask: Sendable {
    public var rle: RLE
    public var area: Int
    /// `[x0, y0, x1, y1]` in the image, x1/y1 inclusive (the official box).
    public var box: [Int]
    public var predictedIou: Float
    /// The point prompt that produced the mask, in image pixels.
    public var pointCoords: SIMD2<Double>
    public var stabilityScore: Float
    /// `[x0, y0, x1, y1]` of the crop the mask came from.
    public var cropBox: [Int]

    public init(rle: RLE, area: Int, box: [Int], predictedIou: Float, pointCoords: SIMD2<Double>, stabilityScore: Float, cropBox: [Int]) {
        (self.rle, self.area, self.box, self.predictedIou) = (rle, area, box, predictedIou)
        (self.pointCoords, self.stabilityScore, self.cropBox) = (pointCoords, stabilityScore, cropBox)
    }
}

/// Where the generator's time went.
public struct GeneratorTimings: Sendable, Equatable {
    /// The mask decoder: its prompts' arithmetic, to the low-resolution logits.
    public var decoder = Duration.zero
    /// The rest: upscaling, thresholds, stability, boxes, RLE and NMS.
    public var masks = Duration.zero
    /// The prompts decoded (one per point).
    public var prompts = 0

    public init() {}
}

public struct SamAutomaticMaskGenerator<B: Backend>: Sendable {
    public let predictor: SamPredictor<B>
    public let options: MaskGeneratorOptions
    /// The normalized point grid of each crop layer.
    let pointGrids: [[SIMD2<Double>]]

    public init(predictor: SamPredictor<B>, options: MaskGeneratorOptions) throws {
        try options.validate()
        self.predictor = predictor
        self.options = options
        pointGrids = buildAllLayerPointGrids(pointsPerSide: options.pointsPerSide, layers: options.cropNLayers,
                                             scalePerLayer: options.cropNPointsDownscaleFactor)
    }

    /// `generate`: every mask found in `image`, in the official order. `progress` is called
    /// after each batch of points with (batches done, batches in all). `features`, when given,
    /// is `image` already encoded: the whole-image crop does not encode it again.
    public func generate(_ image: RGBImage, features: SamImageFeatures<B.Value>? = nil,
                         progress: ((Int, Int) -> Void)? = nil) throws -> [GeneratedMask] {
        var timings = GeneratorTimings()
        return try generate(image, features: features, timings: &timings, progress: progress)
    }

    /// `generate`, adding where its time went to `timings`.
    public func generate(_ image: RGBImage, features: SamImageFeatures<B.Value>? = nil, timings: inout GeneratorTimings,
                         progress: ((Int, Int) -> Void)? = nil) throws -> [GeneratedMask] {
        let (height, width) = (image.height, image.width)
        if let features, features.originalSize != (height, width) {
            throw SamError.invalidInput("the features are of a \(features.originalSize.width)x\(features.originalSize.height) image; the image is \(width)x\(height)")
        }
        let crops = generateCropBoxes(imageHeight: height, imageWidth: width, layers: options.cropNLayers,
                                      overlapRatio: options.cropOverlapRatio)
        let batchesPerLayer = pointGrids.map { ($0.count + options.pointsPerBatch - 1) / options.pointsPerBatch }
        let totalBatches = crops.layerIndices.reduce(0) { $0 + batchesPerLayer[$1] }
        var done = 0
        var data: [GeneratedMask] = []
        for (cropBox, layer) in zip(crops.boxes, crops.layerIndices) {
            let whole = cropBox == [0, 0, width, height]
            data += try processCrop(image, cropBox: cropBox, layer: layer, features: whole ? features : nil, timings: &timings) {
                done += 1
                progress?(done, totalBatches)
            }
        }
        let start = ContinuousClock.now
        defer { timings.masks += start.duration(to: .now) }
        if crops.boxes.count > 1 {
            // Prefer masks from smaller crops: score 1 / crop area.
            let scores = data.map { 1 / Float(($0.cropBox[2] - $0.cropBox[0]) * ($0.cropBox[3] - $0.cropBox[1])) }
            let keep = batchedNMS(boxes: data.map { $0.box.map(Float.init) }, scores: scores,
                                  categories: [Int](repeating: 0, count: data.count), iouThreshold: options.cropNmsThresh)
            data = keep.map { data[$0] }
        }
        return cleaned(data).map(\.mask)
    }

    /// The end of `generate`: small regions cleaned up when `minMaskRegionArea` asks for it,
    /// each survivor with its index in `data`.
    func cleaned(_ data: [GeneratedMask]) -> [(index: Int, mask: GeneratedMask)] {
        guard options.minMaskRegionArea > 0 else { return data.enumerated().map { (index: $0.offset, mask: $0.element) } }
        return postprocessSmallRegions(data, minArea: options.minMaskRegionArea, nmsThresh: max(options.boxNmsThresh, options.cropNmsThresh))
    }

    /// The whole-image grid (the first layer's) in the pixels of a `width x height` image.
    func wholeImageGrid(height: Int, width: Int) -> [SIMD2<Double>] {
        pointGrids[0].map { $0 * SIMD2(Double(width), Double(height)) }
    }

    /// Masks proposed by single points (image pixels) of a whole image already encoded: the
    /// generator's batches, filters and NMS on `points` instead of its grid.
    public func proposals(at points: [SIMD2<Double>], features: SamImageFeatures<B.Value>,
                          timings: inout GeneratorTimings) throws -> [GeneratedMask] {
        let (height, width) = features.originalSize
        return try processPoints(points, features: features, cropBox: [0, 0, width, height], imageSize: (height, width),
                                 timings: &timings) {}
    }

    /// `_process_crop`: encode the crop, run its points in batches, NMS within the crop.
    func processCrop(_ image: RGBImage, cropBox: [Int], layer: Int, features: SamImageFeatures<B.Value>?,
                     timings: inout GeneratorTimings, batchDone: () -> Void) throws -> [GeneratedMask] {
        let cropped = image.cropped(x0: cropBox[0], y0: cropBox[1], x1: cropBox[2], y1: cropBox[3])
        let features = try features ?? predictor.setImage(cropped)
        let scale = SIMD2(Double(cropped.width), Double(cropped.height))
        return try processPoints(pointGrids[layer].map { $0 * scale }, features: features, cropBox: cropBox,
                                 imageSize: (image.height, image.width), timings: &timings, batchDone: batchDone)
    }

    /// A crop's points in batches, then NMS within the crop, the survivors in image coordinates.
    func processPoints(_ points: [SIMD2<Double>], features: SamImageFeatures<B.Value>, cropBox: [Int],
                       imageSize: (height: Int, width: Int), timings: inout GeneratorTimings,
                       batchDone: () -> Void) throws -> [GeneratedMask] {
        let data = try processBatches(points, features: features, cropBox: cropBox, imageSize: imageSize, timings: &timings,
                                      batchDone: batchDone)
        let start = ContinuousClock.now
        defer { timings.masks += start.duration(to: .now) }
        return suppressed(data, cropBox: cropBox)
    }

    /// `points` in batches of `pointsPerBatch`: every batch's masks, before any NMS.
    func processBatches(_ points: [SIMD2<Double>], features: SamImageFeatures<B.Value>, cropBox: [Int],
                        imageSize: (height: Int, width: Int), timings: inout GeneratorTimings,
                        batchDone: () -> Void = {}) throws -> [GeneratedMask] {
        var data: [GeneratedMask] = []
        for start in stride(from: 0, to: points.count, by: options.pointsPerBatch) {
            data += try processBatch(Array(points[start..<min(start + options.pointsPerBatch, points.count)]), features: features,
                                     cropBox: cropBox, imageSize: imageSize, timings: &timings)
            batchDone()
        }
        return data
    }

    /// The end of `_process_crop`: NMS on boxes in crop coordinates, scored by predicted IoU;
    /// the survivors' boxes and points then in the image's.
    func suppressed(_ data: [GeneratedMask], cropBox: [Int]) -> [GeneratedMask] {
        suppressedIndices(data, cropBox: cropBox).map(\.mask)
    }

    /// `suppressed`, each survivor with its index in `data`.
    func suppressedIndices(_ data: [GeneratedMask], cropBox: [Int]) -> [(index: Int, mask: GeneratedMask)] {
        let keep = batchedNMS(boxes: data.map { $0.box.map(Float.init) }, scores: data.map(\.predictedIou),
                              categories: [Int](repeating: 0, count: data.count), iouThreshold: options.boxNmsThresh)
        let imagePoints = uncropPoints(keep.map { data[$0].pointCoords }, cropBox: cropBox)
        return zip(keep, imagePoints).map { i, point in
            var mask = data[i]
            mask.box = uncropBoxXYXY(mask.box, cropBox: cropBox)
            mask.pointCoords = point
            mask.cropBox = cropBox
            return (i, mask)
        }
    }

    /// `_process_batch`: one multimask prediction per point; all three masks are candidates.
    /// The points' masks are post-processed side by side, a point per thread; on a device, for
    /// the whole image, where the logits are (`masksOnDevice`).
    func processBatch(_ points: [SIMD2<Double>], features: SamImageFeatures<B.Value>, cropBox: [Int],
                      imageSize: (height: Int, width: Int), timings: inout GeneratorTimings) throws -> [GeneratedMask] {
        let model = predictor.model, backend = model.backend
        let (cropHeight, cropWidth) = features.originalSize
        // Each point as the decoder's prompt: a foreground point in the model's input frame.
        let prompts = points.map { point in
            let p = predictor.transform.apply(x: point.x, y: point.y, originalHeight: cropHeight, originalWidth: cropWidth)
            return SamPrompt(points: [(p.x, p.y, 1)])
        }
        var start = ContinuousClock.now
        timings.prompts += prompts.count
        let out = try model.decode(features.embedding, prompts: prompts, multimask: true)
        let ious = backend.download(out.iouPredictions).contiguous()
        timings.decoder += start.duration(to: .now)
        start = .now
        defer { timings.masks += start.duration(to: .now) }
        if backend.isDevice, cropBox == [0, 0, imageSize.width, imageSize.height],
           let masks = masksOnDevice(points, lowRes: out.lowResLogits, ious: ious, features: features, cropBox: cropBox) {
            return masks
        }
        let logits = backend.download(out.lowResLogits).contiguous()
        let upscaling = predictor.maskUpscaling(features)
        let perPoint = ious.shape[1]
        let options = options
        let found = Mutex([[GeneratedMask]](repeating: [], count: points.count))
        backend.concurrently(points.count) { b in
            // Candidates that pass the IoU filter, before paying for full-size logits.
            let candidates = (0..<perPoint).filter { m in
                options.predIouThresh <= 0 || ious.pointer[b * perPoint + m] > Float(options.predIouThresh)
            }
            guard !candidates.isEmpty else { return }
            let plane = Tensor(uninitialized: [upscaling.outputCount]), scratch = Tensor(uninitialized: [upscaling.scratchCount])
            var masks: [GeneratedMask] = []
            for m in candidates {
                upscaling.apply(logits.pointer + (b * perPoint + m) * upscaling.lowResCount, into: plane.pointer, scratch: scratch.pointer)
                let values = UnsafeBufferPointer(start: plane.pointer, count: upscaling.outputCount)
                let stability = calculateStabilityScore(logits: values, height: cropHeight, width: cropWidth,
                                                        maskThreshold: 0, thresholdOffset: options.stabilityScoreOffset)
                if options.stabilityScoreThresh > 0 && !(stability >= Float(options.stabilityScoreThresh)) { continue }
                let mask = BinaryMask(logits: values, height: cropHeight, width: cropWidth, threshold: 0)
                let box = mask.box
                if isBoxNearCropEdge(box, cropBox: cropBox, origBox: [0, 0, imageSize.width, imageSize.height]) { continue }
                let rle = maskToRLE(uncropMask(mask, cropBox: cropBox, origHeight: imageSize.height, origWidth: imageSize.width))
                masks.append(GeneratedMask(rle: rle, area: areaFromRLE(rle), box: box, predictedIou: ious.pointer[b * perPoint + m],
                                           pointCoords: points[b], stabilityScore: stability, cropBox: cropBox))
            }
            found.withLock { $0[b] = masks }
        }
        return found.withLock { $0.flatMap { $0 } }
    }

    /// `processBatch`'s masks made on a device, for the whole image (`SamPredictor.maskBits`):
    /// only their bits come to the host, which reads each one's RLE and box off them. The same
    /// filters in the same order; the stability score from the same counts. Nil when the masks
    /// would not fit the device.
    func masksOnDevice(_ points: [SIMD2<Double>], lowRes: B.Value, ious: Tensor, features: SamImageFeatures<B.Value>,
                       cropBox: [Int]) -> [GeneratedMask]? {
        let perPoint = ious.shape[1], (height, width) = features.originalSize
        var masks: [GeneratedMask] = []
        let made = predictor.maskBits(lowRes, features: features, stabilityOffset: options.stabilityScoreOffset) { range, bits in
            for b in range {
                for m in 0..<perPoint {
                    let iou = ious.pointer[b * perPoint + m], plane = (b - range.lowerBound) * perPoint + m
                    if options.predIouThresh > 0 && !(iou > Float(options.predIouThresh)) { continue }
                    let stability = stabilityScore(bits, plane: plane)
                    if options.stabilityScoreThresh > 0 && !(stability >= Float(options.stabilityScoreThresh)) { continue }
                    let (rle, box) = rleAndBox(bits, plane: plane)
                    if isBoxNearCropEdge(box, cropBox: cropBox, origBox: [0, 0, width, height]) { continue }
                    masks.append(GeneratedMask(rle: rle, area: areaFromRLE(rle), box: box, predictedIou: iou, pointCoords: points[b],
                                               stabilityScore: stability, cropBox: cropBox))
                }
            }
        }
        return made ? masks : nil
    }

    /// `postprocess_small_regions`: fill small holes, remove small islands; masks that changed
    /// compete in an NMS against unchanged ones with score 0, and only surviving changed masks
    /// take their new shape.
    /// Each survivor comes with its index in `data`.
    func postprocessSmallRegions(_ data: [GeneratedMask], minArea: Int, nmsThresh: Double) -> [(index: Int, mask: GeneratedMask)] {
        guard !data.isEmpty else { return [] }
        var masks: [BinaryMask] = [], scores: [Float] = []
        for record in data {
            let (filled, holesChanged) = removeSmallRegions(rleToMask(record.rle), areaThreshold: Double(minArea), mode: .holes)
            let (cleaned, islandsChanged) = removeSmallRegions(filled, areaThreshold: Double(minArea), mode: .islands)
            masks.append(cleaned)
            scores.append(holesChanged || islandsChanged ? 0 : 1)
        }
        let boxes = masks.map(\.box)
        let keep = batchedNMS(boxes: boxes.map { $0.map(Float.init) }, scores: scores,
                              categories: [Int](repeating: 0, count: data.count), iouThreshold: nmsThresh)
        return keep.map { i in
            var record = data[i]
            if scores[i] == 0 {
                record.rle = maskToRLE(masks[i])
                record.area = areaFromRLE(record.rle)
                record.box = boxes[i]
            }
            return (i, record)
        }
    }
}
