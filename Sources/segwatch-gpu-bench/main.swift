// segwatch-gpu-bench: the Vulkan backend's figures on a machine that may be bare (no Swift
// runtime, no FFmpeg, no weights). It links the Swift runtime and OpenBLAS statically
// (scripts/gpu-bench builds and packages it), makes random weights in the published layouts
// (MobileSAM, open_clip ViT-B/16), and times on the device what a frame of `segwatch run` asks of
// it: SAM's encoder, the mask decoder, CLIP's dense features, a keyframe and a tracked frame.
// The host's share of a frame (tracking, classification, events) is `segwatch bench pipeline`'s.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SegwatchBackends
import SegwatchCLIP
import SegwatchNN
import SegwatchSAM
import SegwatchSynthetic
import SegwatchTensor
import SegwatchVulkan

let usage = """
    usage: segwatch-gpu-bench [--backend vulkan|cpu] [--device N] [--precision float32|float16|bfloat16]
                              [--runs N] [--warmup N] [--threads N]
                              [--width W --height H] [--points-per-side N] [--json]

    Times, on a Vulkan GPU (the first, or --device N, which may also name a CPU's device such as
    lavapipe), with random weights made at start (MobileSAM, CLIP ViT-B/16):
      encoder_ms                   MobileSAM's image encoder, 1024x1024
      decoder_ms_per_prompt_b64    the mask decoder, 64 point prompts, multimask, per prompt
      clip_448_ms                  CLIP ViT-B/16's dense features at 448x448
      keyframe_ms                  a W x H frame (default 1280x720): SAM encoder, the automatic mask
                                   generator on an N x N grid (default 32x32)
                                   at thresholds 0 (every mask is post-processed), CLIP dense at 448
      tracked_frame_ms             a W x H frame: SAM encoder, 16 tracks' prompts (box, point and
                                   last logits), their masks, CLIP dense at 448
    Each is the median of --runs (default 10) after --warmup (default 2), in milliseconds.
    """

struct Arguments {
    var backend = BackendChoice.vulkan, device: Int?, precision = Precision.float32, runs = 10, warmup = 2, threads = 2
    var width = 1280, height = 720, pointsPerSide = 32, json = false

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        func value(_ name: String) throws -> String {
            guard let next = rest.popFirst() else { throw BackendError("\(name) needs a value\n\n\(usage)") }
            return next
        }
        func number(_ name: String, in range: ClosedRange<Int>) throws -> Int {
            let text = try value(name)
            guard let n = Int(text), range.contains(n) else { throw BackendError("\(name) must be an integer in \(range), not '\(text)'") }
            return n
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--backend":
                let text = try value(argument)
                guard let choice = BackendChoice(rawValue: text) else { throw BackendError("--backend must be vulkan, cpu or auto, not '\(text)'") }
                backend = choice
            case "--device": device = try number(argument, in: 0...64)
            case "--precision":
                let text = try value(argument)
                guard let choice = Precision(rawValue: text) else { throw BackendError("--precision must be float32, float16 or bfloat16, not '\(text)'") }
                precision = choice
            case "--runs": runs = try number(argument, in: 1...1000)
            case "--warmup": warmup = try number(argument, in: 0...1000)
            case "--threads": threads = try number(argument, in: 1...256)
            case "--width": width = try number(argument, in: 16...8192)
            case "--height": height = try number(argument, in: 16...8192)
            case "--points-per-side": pointsPerSide = try number(argument, in: 1...64)
            case "--json": json = true
            case "-h", "--help":
                print(usage)
                exit(0)
            default: throw BackendError("unknown argument '\(argument)'\n\n\(usage)")
            }
        }
    }
}

/// `body` `warmup` times, then `runs` times: the median milliseconds.
func median(warmup: Int, runs: Int, _ body: () throws -> Void) rethrows -> Double {
    for _ in 0..<warmup { try body() }
    var samples: [Double] = []
    for _ in 0..<runs {
        let start = ContinuousClock.now
        try body()
        let elapsed = start.duration(to: .now).components
        samples.append(Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15)
    }
    samples.sort()
    return runs % 2 == 1 ? samples[runs / 2] : (samples[runs / 2 - 1] + samples[runs / 2]) / 2
}

func benchmark(_ arguments: Arguments) throws {
    let scratch = URL(fileURLWithPath: ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp")
        .appendingPathComponent("segwatch-gpu-bench-\(getpid())")
    defer { try? FileManager.default.removeItem(at: scratch) }
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    let engine = CPUEngine(threads: arguments.threads)
    var device = arguments.device
    if arguments.backend == .vulkan, device == nil {
        // A GPU, not a CPU's Vulkan device (lavapipe), unless --device names one.
        let devices = try vulkanDevices()
        guard let gpu = devices.first(where: { $0.usable && $0.type != "cpu" }) else {
            throw BackendError("no usable Vulkan GPU among \(devices.count) devices (\(devices.map { "\($0.index): \($0.name), \($0.type)" }.joined(separator: "; "))); --device N runs on one of them anyway")
        }
        device = gpu.index
    }
    let backend = try arguments.backend.open(threads: arguments.threads, device: device, precision: arguments.precision) { message in
        FileHandleStandardError.write(message)
    }
    try engine.run {
        let samPath = scratch.appendingPathComponent("mobile_sam.safetensors").path
        try writeSyntheticMobileSAM(to: samPath)
        let clipFolder = scratch.appendingPathComponent("clip")
        try writeSyntheticOpenCLIP(to: clipFolder, vision: (768, 12, 64), text: (512, 12, 8), embedDim: 512)
        let sam = try Sam(contentsOf: samPath, backend: backend)
        let clip = try CLIP.load(clipFolder.path, backend: backend)
        let predictor = SamPredictor(model: sam)
        var figures: [(String, Double)] = []
        func time(_ key: String, divisor: Double = 1, _ body: () throws -> Void) rethrows {
            let ms = try median(warmup: arguments.warmup, runs: arguments.runs, body) / divisor
            figures.append((key, ms))
            if !arguments.json { print("\(key): \(String(Int((ms * 1000).rounded())).paddedMilli) ms") }
        }

        let input = backend.upload(benchTensor([1, 3, 1024, 1024], seed: 1))
        var embedding = sam.encode(input)
        time("encoder_ms") {
            embedding = sam.encode(input)
            backend.synchronize()
        }
        let points = benchTensor([64, 2], seed: 64).toArray().map { Double($0 + 1) * 512 }
        let prompts = (0..<64).map { SamPrompt(points: [(points[2 * $0], points[2 * $0 + 1], 1)]) }
        try time("decoder_ms_per_prompt_b64", divisor: 64) {
            _ = backend.download(try sam.decode(embedding, prompts: prompts, multimask: true).iouPredictions)
        }
        let clipPixels = backend.upload(benchTensor([1, 3, 448, 448], seed: 448))
        time("clip_448_ms") {
            _ = backend.download(clip.vision(clipPixels, dense: true).dense!)
        }

        // A frame of random pixels, as `segwatch run` would see it.
        let (width, height) = (arguments.width, arguments.height)
        let frame = RGBImage(height: height, width: width,
                             pixels: benchTensor([height * width * 3], seed: 7).toArray().map { UInt8(($0 + 1) * 127.5) })
        let short = 448, patch = clip.config.patchSize
        let long = (Int((Double(short) * Double(max(width, height)) / Double(min(width, height))).rounded()) + patch / 2) / patch * patch
        let denseSize = width >= height ? (short, long) : (long, short)
        func clipDense() {
            let pixels = modelPixels(rgb: frame.pixels, height: height, width: width, size: denseSize,
                                     mean: clip.config.imageMean, std: clip.config.imageStd)
            _ = backend.download(clip.vision(backend.upload(pixels), dense: true).dense!)
        }
        var options = MaskGeneratorOptions()
        (options.predIouThresh, options.stabilityScoreThresh, options.boxNmsThresh) = (0, 0, 1)
        options.pointsPerSide = arguments.pointsPerSide
        let generator = try SamAutomaticMaskGenerator(predictor: predictor, options: options)
        var masks = 0
        try time("keyframe_ms") {
            let features = try predictor.setImage(frame)
            masks = try generator.generate(frame, features: features).count
            clipDense()
        }
        // Sixteen tracks: boxes over the frame, a point in each, and the low-resolution logits
        // of their last masks fed back, as the analyzer prompts live tracks; their masks made
        // as the analyzer makes them (segmentTracks): on a device there, bits back.
        let scale = Double(sam.imageSize) / Double(max(width, height))
        let seeds = (0..<16).map { i -> SamPrompt in
            let (w, h) = (Double(width) * scale / 4, Double(height) * scale / 4)
            let (x, y) = (Double(i % 4) * w, Double(i / 4) * h)
            return SamPrompt(points: [(x + w / 2, y + h / 2, 1)], box: (x, y, x + w, y + h))
        }
        let seeded = backend.download(try sam.decode(try predictor.setImage(frame).embedding, prompts: seeds, multimask: false).lowResLogits)
        let tracks = seeds.enumerated().map { i, seed in
            var prompt = seed
            prompt.maskInput = seeded.sliced(0, i..<i + 1).reshaped([1, 256, 256]).contiguous()
            return prompt
        }
        try time("tracked_frame_ms") {
            let features = try predictor.setImage(frame)
            let out = try sam.decode(features.embedding, prompts: tracks, multimask: false)
            let logits = backend.download(out.lowResLogits).contiguous()
            _ = backend.download(out.iouPredictions)
            let onDevice = backend.isDevice && predictor.maskBits(out.lowResLogits, features: features, stabilityOffset: 1) { range, bits in
                for plane in 0..<range.count { _ = (BinaryMask(bits, plane: plane), rleAndBox(bits, plane: plane), stabilityScore(bits, plane: plane)) }
            }
            if !onDevice {
                let upscaling = predictor.maskUpscaling(features)
                backend.concurrently(tracks.count) { t in
                    let plane = Tensor(uninitialized: [upscaling.outputCount]), scratch = Tensor(uninitialized: [upscaling.scratchCount])
                    upscaling.apply(logits.pointer + t * upscaling.lowResCount, into: plane.pointer, scratch: scratch.pointer)
                    _ = BinaryMask(logits: UnsafeBufferPointer(start: plane.pointer, count: upscaling.outputCount), height: height,
                                   width: width, threshold: 0)
                }
            }
            clipDense()
        }

        let targets = ["encoder_ms": 5.0, "decoder_ms_per_prompt_b64": 0.1, "clip_448_ms": 10.0, "keyframe_ms": 300.0, "tracked_frame_ms": 30.0]
        var device = backend.name
        if case let .vulkan(vulkan) = backend.kind {
            device += ", driver \(vulkan.device.driver), Vulkan \(vulkan.device.apiVersion), weights \(arguments.precision.rawValue)"
        }
        if arguments.json {
            var fields = figures.map { "\"\($0.0)\": \(String(Int(($0.1 * 1000).rounded())).paddedMilli)" }
            fields.append("\"keyframe_masks\": \(masks)")
            fields.append("\"frame\": \"\(width)x\(height)\"")
            fields.append("\"device\": \"\(device.replacing("\"", with: "'"))\"")
            fields.append("\"met\": {" + figures.map { "\"\($0.0)\": \($0.1 <= targets[$0.0]!)" }.joined(separator: ", ") + "}")
            print("{" + fields.joined(separator: ", ") + "}")
        } else {
            print("keyframe masks: \(masks) (frame \(width)x\(height))")
            print("device: \(device)")
            for (key, ms) in figures { print("\(key) \(ms <= targets[key]! ? "meets" : "misses") its target of \(targets[key]!) ms") }
        }
    }
}

extension String {
    /// An integer count of thousandths as a decimal with three places ("12345" -> "12.345").
    var paddedMilli: String {
        let digits = String(repeating: "0", count: max(0, 4 - count)) + self
        return digits.dropLast(3) + "." + digits.suffix(3)
    }
}

/// Writes a line to standard error (FileHandle is Foundation's, which this binary does not link).
enum FileHandleStandardError {
    static func write(_ message: String) {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { writeBytes(2, $0.baseAddress, $0.count) }
    }
}

#if canImport(Glibc)
private let writeBytes = Glibc.write
#else
private let writeBytes = Darwin.write
#endif

do {
    try benchmark(try Arguments(Array(CommandLine.arguments.dropFirst())))
} catch {
    FileHandleStandardError.write("segwatch-gpu-bench: \(error)")
    exit(1)
}
