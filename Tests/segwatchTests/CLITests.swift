import Foundation
import SegwatchCheckpoint
import SegwatchSAM
import SegwatchTensor
import SegwatchTestSupport
import Testing

/// The `segwatch` binary built beside this test bundle, or `SEGWATCH_BIN`.
let segwatch: String = {
    if let override = ProcessInfo.processInfo.environment["SEGWATCH_BIN"] { return override }
    let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var folder = runner.deletingLastPathComponent()
    // The runner may sit inside an .xctest bundle folder.
    while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("segwatch").path), folder.path != "/" {
        folder.deleteLastPathComponent()
    }
    return folder.appendingPathComponent("segwatch").path
}()

@Suite struct ProbeCommandTests {
    // Guards `probe --json --count-frames`: the keys the issue names, and exact values.
    @Test(arguments: [("bikes.mp4", 640, 272, 250, 25.0), ("bigbuckbunny.mp4", 1280, 720, 132, 25.0),
                      ("carphone.mp4", 176, 144, 120, 29.97)])
    func jsonReportsEveryVideoKey(file: String, width: Int, height: Int, frames: Int, fps: Double) throws {
        let result = try runProcess(segwatch, ["probe", Fixtures.media(file), "--json", "--count-frames"], timeout: 60)
        #expect(result.status == 0, "\(result.errorOutput)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let streams = try #require(object["streams"] as? [[String: Any]])
        let video = try #require(streams.first { $0["type"] as? String == "video" })
        #expect(video["codec"] as? String == "h264")
        #expect(video["width"] as? Int == width && video["height"] as? Int == height)
        #expect(video["frames"] as? Int == frames)
        #expect(abs((video["fps"] as? Double ?? 0) - fps) < 0.01)
        let duration = try #require(video["duration"] as? Double)
        #expect(abs(duration - Double(frames) / fps) < 0.1)
    }

    @Test func framesAreOnlyReportedWhenCounted() throws {
        let result = try runProcess(segwatch, ["probe", Fixtures.media("bikes.mp4"), "--json"], timeout: 60)
        #expect(result.status == 0)
        #expect(!result.output.contains("\"frames\""))
    }

    // Guards the error path users see: one line naming the input, exit status 1, no crash.
    @Test(arguments: ["/nonexistent/clip.mp4", "/dev/video93"])
    func badInputIsOneClearLine(input: String) throws {
        let result = try runProcess(segwatch, ["probe", input], timeout: 20)
        #expect(result.status == 1)
        let lines = result.errorOutput.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("segwatch: ") && lines[0].contains(input))
    }

    @Test func everyCommandHasHelpAndVersion() throws {
        for command in [[], ["probe"], ["record"], ["segment"], ["embed"], ["vocab"], ["label"], ["eval"], ["bench"], ["bench", "decode"], ["bench", "sam"], ["bench", "clip"], ["bench", "label"], ["bench", "pipeline"], ["bench", "serve"], ["bench", "live"], ["run"], ["tail"], ["models"], ["models", "list"], ["models", "fetch"]] {
            let help = try runProcess(segwatch, command + ["--help"], timeout: 20)
            #expect(help.status == 0 && help.output.contains("USAGE:"), "\(command) --help")
            let version = try runProcess(segwatch, command + ["--version"], timeout: 20)
            #expect(version.status == 0 && version.output.first?.isNumber == true, "\(command) --version")
        }
    }
}

@Suite struct RecordCommandTests {
    // Guards finalization on SIGINT: the MP4 must be playable and hold every frame reported.
    @Test(arguments: [SIGINT, SIGTERM])
    func interruptedRecordingIsPlayable(signal: Int32) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let output = folder.path("interrupted.mp4")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: segwatch)
        process.arguments = ["record", "lavfi:testsrc=size=320x240:rate=25", "-o", output, "--json"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until frames are being written, then interrupt mid-file.
        let start = Date()
        while (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0 < 20_000,
              Date().timeIntervalSince(start) < 30 {
            Thread.sleep(forTimeInterval: 0.1)
        }
        kill(process.processIdentifier, signal)
        let stopped = Date()
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(stopped) < 10)
        #expect(process.terminationStatus == 0)
        let summary = try #require(try JSONSerialization.jsonObject(with: out.fileHandleForReading.readDataToEndOfFile()) as? [String: Any])
        let written = try #require(summary["frames"] as? Int)
        #expect(written > 0)
        let probed = try ffprobeVideo(output)
        #expect(probed.frames == written && probed.width == 320 && probed.height == 240)
    }

    @Test func recordsAFixedNumberOfFrames() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let output = folder.path("clip.mkv")
        let result = try runProcess(segwatch, ["record", Fixtures.media("bikes.mp4"), "-o", output,
                                               "--max-frames", "40", "--size", "320x136", "--json"], timeout: 60)
        #expect(result.status == 0, "\(result.errorOutput)")
        let probed = try ffprobeVideo(output)
        #expect(probed.frames == 40 && probed.width == 320 && probed.height == 136)
    }

    // 4:2:0 color needs even sizes: an odd size loses a row or column, and says so.
    @Test func anOddSizeIsNamedWhenItIsRoundedDown() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let output = folder.path("odd.mp4")
        let result = try runProcess(segwatch, ["record", "lavfi:testsrc=size=33x17:rate=5", "--out", output, "--max-frames", "3"], timeout: 60)
        #expect(result.status == 0 && result.errorOutput.contains("33x17 is recorded as 32x16"), "\(result.errorOutput)")
        let probed = try ffprobeVideo(output)
        #expect(probed.width == 32 && probed.height == 16)
    }
}

@Suite struct BenchCommandTests {
    // Guards the bench contract: one JSON object with `fps`, and `*_ms` medians with samples.
    @Test func decodeBenchPrintsFPSAsJSON() throws {
        let result = try runProcess(segwatch, ["bench", "decode", Fixtures.media("carphone.mp4"), "--json",
                                               "--runs", "1", "--warmup", "0"], timeout: 120)
        #expect(result.status == 0, "\(result.errorOutput)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect(object["frames"] as? Int == 120)
        #expect((object["fps"] as? Double ?? 0) > 0)
        #expect(object["decode_ms"] is Double && object["ffmpeg_fps"] is Double)
        #expect((object["samples"] as? [String: Any])?["decode_ms"] is [Any])
    }

    // Guards the gemm benchmark's contract: both sides timed in one run, same size.
    @Test func gemmBenchComparesWithOpenBLAS() throws {
        let result = try runProcess(segwatch, ["bench", "gemm", "--size", "96", "--json", "--runs", "3"], timeout: 60)
        #expect(result.status == 0, "\(result.errorOutput)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect(object["size"] as? Int == 96 && object["threads"] as? Int == 2)
        #expect((object["segwatch_gflops"] as? Double ?? 0) > 0 && (object["openblas_gflops"] as? Double ?? 0) > 0)
        #expect(object["overhead_percent"] is Double)
        #expect(((object["samples"] as? [String: Any])?["openblas_ms"] as? [Any])?.count == 3)
        let bad = try runProcess(segwatch, ["bench", "gemm", "--size", "0"], timeout: 30)
        #expect(bad.status != 0 && bad.errorOutput.contains("--size"))
    }

    // Guards the SAM benchmark's keys (the issue names them) and its per-op profile.
    // The contract's keys, on the DINOv2 fixture (the synthetic ViT-B/14 is the default), and
    // the head's training step with a small batch.
    @Test func dinoAndHeadBenchesReportTheirKeys() throws {
        let dino = try runProcess(segwatch, ["bench", "dino", "--dino", Fixtures.root.appendingPathComponent("dinov2").path, "--json",
                                             "--runs", "1", "--warmup", "0"], timeout: 120)
        #expect(dino.status == 0, "\(dino.errorOutput)")
        let object = try #require(try JSONSerialization.jsonObject(with: dino.stdout) as? [String: Any])
        for key in ["dino_ms_224", "dino_ms_448"] { #expect((object[key] as? Double ?? 0) > 0, "\(key)") }
        #expect(object["cpu"] is [String: Any] && object["kernels"] is String)
        let head = try runProcess(segwatch, ["bench", "head", "--batch", "8", "--json", "--runs", "2", "--warmup", "0"], timeout: 120)
        #expect(head.status == 0, "\(head.errorOutput)")
        let steps = try #require(try JSONSerialization.jsonObject(with: head.stdout) as? [String: Any])
        #expect((steps["head_step_ms"] as? Double ?? 0) > 0 && (steps["head_steps_per_s"] as? Double ?? 0) > 0)
    }

    @Test func samBenchReportsEncoderAndDecoderKeys() throws {
        let checkpoint = Fixtures.root.appendingPathComponent("sam_vit/sam_vit_tiny.pth").path
        let result = try runProcess(segwatch, ["bench", "sam", "--sam", checkpoint, "--json", "--runs", "1", "--warmup", "0",
                                               "--batches", "1,2", "--profile"], timeout: 180)
        #expect(result.status == 0, "\(result.errorOutput)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        for key in ["encoder_ms", "decoder_ms_per_prompt_b1", "decoder_ms_per_prompt_b2", "profile.encoder.linear_ms",
                    "profile.encoder.linear_gflops", "profile.encoder.products_gflops"] {
            #expect((object[key] as? Double ?? 0) > 0, "\(key)")
        }
        // The machine: the CPU and the kernel build that ran.
        let cpu = try #require(object["cpu"] as? [String: Any])
        #expect(cpu["model"] is String && cpu["avx512"] is Bool)
        #expect(["x86-64", "avx2", "avx512"].contains(object["kernels"] as? String ?? ""))
        #expect((object["kernels"] as? String == "avx512") == (cpu["avx512"] as? Bool == true))
        let bad = try runProcess(segwatch, ["bench", "sam", "--sam", checkpoint, "--batches", "0"], timeout: 30)
        #expect(bad.status != 0 && bad.errorOutput.contains("--batches"))
    }

    // Guards bench pipeline's replay at a live rate: --every N analyzes frames 0, N, 2N ... and
    // stops where the video does (bikes.mp4 has 250 frames: 0 and 200 of --every 200).
    @Test func pipelineBenchAnalyzesEveryNthFrame() throws {
        func bench(_ every: String, frames: String) throws -> ProcessResult {
            try runProcess(segwatch, ["bench", "pipeline", "--video", Fixtures.media("bikes.mp4"),
                                      "--sam", Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path,
                                      "--clip", Fixtures.root.appendingPathComponent("clip_hf").path, "--clip-size", "64",
                                      "--points-per-side", "2", "--segments", "4", "--labels", "3", "--every", every,
                                      "--max-frames", frames, "--runs", "1", "--warmup", "0", "--json"], timeout: 300)
        }
        let past = try bench("200", frames: "3")
        #expect(past.status == 0, "\(past.errorOutput)")
        let end = try #require(try JSONSerialization.jsonObject(with: past.stdout) as? [String: Any])
        #expect(end["frames"] as? Int == 2 && end["every"] as? Int == 200, "\(end)")
        // Frames 0, 5 and 10: a keyframe, then two tracked frames.
        let result = try bench("5", frames: "3")
        #expect(result.status == 0, "\(result.errorOutput)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect(object["frames"] as? Int == 3 && object["keyframes"] as? Int == 1, "\(object)")
        let share = try #require(object["tracked_clip_share"] as? Double)
        #expect((0...1).contains(share) && (object["carried_per_tracked_frame"] as? Double ?? -1) >= 0, "\(object)")
        let bad = try bench("0", frames: "3")
        #expect(bad.status != 0 && bad.errorOutput.contains("--every"))
    }

    @Test func labelBenchReportsEveryStage() throws {
        let result = try runProcess(segwatch, ["bench", "label", "--sam", Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path,
                                               "--clip", Fixtures.root.appendingPathComponent("clip_hf").path,
                                               "--image", Fixtures.root.appendingPathComponent("images/bikes_f100.png").path,
                                               "--points-per-side", "2", "--labels", "30", "--segments", "4", "--runs", "1", "--warmup", "0",
                                               "--json"], timeout: 180)
        #expect(result.status == 0, "\(result.errorOutput)")
        let object = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let stages = ["amg_ms", "clip_dense_ms", "embed_ms_per_segment", "classify_ms"].map { object[$0] as? Double ?? 0 }
        #expect(stages.allSatisfy { $0 > 0 }, "\(object)")
        let total = try #require(object["total_ms"] as? Double)
        // Each figure is printed to 0.001 ms: the sum of seven rounded terms is within 0.0035 of the total.
        #expect(abs(total - (stages[0] + stages[1] + 4 * stages[2] + stages[3])) < 0.004)
        #expect(object["labels"] as? Int == 30 && object["segments"] as? Int == 4)
    }
}

@Suite struct SegmentCommandTests {
    static let checkpoint = Fixtures.root.appendingPathComponent("sam_vit/sam_vit_tiny.pth").path
    static let image = Fixtures.root.appendingPathComponent("images/bus.png").path

    // Guards the JSON contract of prompted masks: COCO RLE of the image's size whose area and
    // box agree with the raw logits written for the same prompt.
    @Test func jsonMasksAgreeWithTheRawLogits() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let prompt = ["--point", "210,148", "--point", "94,129,0", "--multimask"]
        let json = try runProcess(segwatch, ["segment", Self.image, "--sam", Self.checkpoint] + prompt + ["--out", folder.path("m.json")], timeout: 120)
        #expect(json.status == 0, "\(json.errorOutput)")
        let raw = try runProcess(segwatch, ["segment", Self.image, "--sam", Self.checkpoint] + prompt + ["--out", folder.path("m.safetensors")], timeout: 120)
        #expect(raw.status == 0, "\(raw.errorOutput)")
        let records = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.path("m.json")))) as? [[String: Any]])
        let tensors = try StateDict.load(folder.path("m.safetensors"))
        let logits = try tensors.tensor("mask_logits")
        #expect(logits.shape == [3, 480, 360])
        #expect(try tensors.tensor("image_embedding").shape == [1, 256, 64, 64])
        #expect(try tensors.tensor("low_res_logits").shape == [3, 256, 256])
        let scores = try tensors.tensor("iou_predictions").toArray()
        #expect(records.count == 3)
        let values = logits.toArray()
        for (c, record) in records.enumerated() {
            let segmentation = try #require(record["segmentation"] as? [String: Any])
            #expect(segmentation["size"] as? [Int] == [480, 360])
            #expect(!(segmentation["counts"] as? String ?? "").isEmpty)
            let plane = values[(c * 480 * 360)..<((c + 1) * 480 * 360)]
            #expect(record["area"] as? Int == plane.filter { $0 > 0 }.count)
            #expect(abs((record["predicted_iou"] as? Double ?? .nan) - Double(scores[c])) < 1e-6)
            // bbox [x, y, w, h] with x + w and y + h the last set column and row.
            let bbox = try #require(record["bbox"] as? [Int])
            var columns = Set<Int>(), rows = Set<Int>()
            for (i, v) in plane.enumerated() where v > 0 {
                rows.insert(i / 360)
                columns.insert(i % 360)
            }
            if let x0 = columns.min(), let y0 = rows.min(), let x1 = columns.max(), let y1 = rows.max() {
                #expect(bbox == [x0, y0, x1 - x0, y1 - y0])
            }
        }
    }

    // Guards --frame: a video's frame is a picture like any other.
    @Test func segmentsAVideoFrame() throws {
        let result = try runProcess(segwatch, ["segment", Fixtures.media("carphone.mp4"), "--frame", "5", "--sam", Self.checkpoint,
                                               "--box", "20,20,120,100"], timeout: 120)
        #expect(result.status == 0, "\(result.errorOutput)")
        #expect(result.output.contains("predicted_iou"))
    }

    // Guards --precision bfloat16 where the CPU has AVX512_BF16 (elsewhere it is the one-line
    // refusal below): the prompt's masks, computed in bfloat16 (not float32's bits).
    @Test(.enabled(if: cpuRunsBFloat16, "this CPU has no AVX512_BF16")) func segmentsInBFloat16() throws {
        let arguments = ["segment", Self.image, "--sam", Self.checkpoint, "--point", "100,80"]
        let (single, half) = (try runProcess(segwatch, arguments, timeout: 120), try runProcess(segwatch, arguments + ["--precision", "bfloat16"], timeout: 120))
        #expect(single.status == 0 && half.status == 0, "\(single.errorOutput) \(half.errorOutput)")
        #expect(half.output.contains("predicted_iou") && half.output != single.output)
    }

    // Guards the error paths: one line naming the input and what was expected; no crash.
    @Test func badInputsAreOneClearLine() throws {
        let notSam = Fixtures.root.appendingPathComponent("clip_hf/model.safetensors").path
        let cases: [([String], String)] = [
            (["segment", Self.image, "--sam", "/nonexistent/sam.pth", "--point", "1,1"], "/nonexistent/sam.pth"),
            (["segment", Self.image, "--sam", notSam, "--point", "1,1"], "not a SAM checkpoint"),
            (["segment", "/nonexistent/picture.png", "--sam", Self.checkpoint, "--point", "1,1"], "/nonexistent/picture.png"),
            (["segment", Fixtures.media("carphone.mp4"), "--frame", "500", "--sam", Self.checkpoint, "--point", "1,1"], "--frame 500"),
            (["segment", Self.image, "--sam", Self.checkpoint, "--point", "1,1", "--backend", "cpu", "--precision", "float16"],
             "--precision float16 needs --backend vulkan"),
            (["segment", Self.image, "--sam", Self.checkpoint, "--point", "1,1", "--backend", "vulkan", "--precision", "bfloat16"],
             "--precision bfloat16 needs --backend cpu"),
        ] + (cpuRunsBFloat16 ? [] : [
            (["segment", Self.image, "--sam", Self.checkpoint, "--point", "1,1", "--precision", "bfloat16"], "needs a CPU with AVX512_BF16"),
        ])
        for (arguments, needle) in cases {
            let result = try runProcess(segwatch, arguments, timeout: 60)
            #expect(result.status == 1, "\(arguments)")
            let lines = result.errorOutput.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("segwatch: ") && lines[0].contains(needle), "\(result.errorOutput)")
        }
        let usage: [([String], String)] = [
            (["segment", Self.image, "--sam", Self.checkpoint], "prompt"),
            (["segment", Self.image, "--sam", Self.checkpoint, "--point", "1,2,3,4"], "--point"),
            (["segment", Self.image, "--sam", Self.checkpoint, "--point", "1,2,7"], "label"),
            (["segment", Self.image, "--sam", Self.checkpoint, "--box", "1,2,3"], "--box"),
            (["segment", Self.image, "--sam", Self.checkpoint, "--auto", "--points-per-side", "0"], "points-per-side"),
            (["segment", Self.image, "--sam", Self.checkpoint, "--point", "1,1", "--out", "x.png"], "--out"),
            (["segment", Self.image, "--sam", Self.checkpoint, "--point", "1,1", "--precision", "half"], "float32|float16"),
        ]
        for (arguments, needle) in usage {
            let result = try runProcess(segwatch, arguments, timeout: 30)
            #expect(result.status != 0 && result.errorOutput.contains(needle), "\(arguments): \(result.errorOutput)")
        }
    }
}

@Suite struct VocabCommandTests {
    static let clip = Fixtures.root.appendingPathComponent("clip_hf").path

    private func json(_ result: ProcessResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "\(result.output)")
    }

    // Guards the cache as a user meets it: the second run encodes nothing, a grown vocabulary
    // only its new label, and --out holds unit rows named in the metadata.
    @Test func encodesOnceThenReadsTheCache() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let vocab = folder.path("vocab.txt")
        try Data("# test\ncar|automobile\ndog\nsky\n".utf8).write(to: URL(fileURLWithPath: vocab))
        let common = ["vocab", "--clip", Self.clip, "--cache", folder.path("cache"), "--json", "--threads", "2"]
        let first = try runProcess(segwatch, common + ["--vocab", vocab], timeout: 60)
        #expect(first.status == 0, "\(first.errorOutput)")
        #expect(try json(first)["encoded"] as? Int == 3)
        let second = try runProcess(segwatch, common + ["--vocab", vocab, "--label", "tree", "--out", folder.path("v.safetensors")], timeout: 60)
        #expect(second.status == 0, "\(second.errorOutput)")
        let summary = try json(second)
        #expect(summary["encoded"] as? Int == 1 && summary["cached"] as? Int == 3 && summary["labels"] as? Int == 4)
        let embeds = try StateDict.load(folder.path("v.safetensors")).tensor("labels.embeds")
        #expect(embeds.shape == [4, 32])
        let values = embeds.toArray()
        for row in 0..<4 {
            let norm = values[(row * 32)..<((row + 1) * 32)].reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-5)
        }
        let file = try Data(contentsOf: URL(fileURLWithPath: folder.path("v.safetensors")))
        let headerLength = Int(file.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
        let header = try #require(try JSONSerialization.jsonObject(with: file.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        let metadata = try #require(header["__metadata__"] as? [String: String])
        #expect(metadata["labels"] == #"["car","dog","sky","tree"]"#)
    }

    // Guards the error paths: one line naming the input and what was wrong; no crash.
    @Test func badVocabulariesAreOneClearLine() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let empty = folder.path("empty.txt"), bad = folder.path("bad.txt")
        try Data("# only a comment\n".utf8).write(to: URL(fileURLWithPath: empty))
        try Data("car\ndog\n|hound\n".utf8).write(to: URL(fileURLWithPath: bad))
        let long = Array(repeating: "word", count: 80).joined(separator: " ")
        let base = ["vocab", "--clip", Self.clip, "--cache", folder.path("cache")]
        let cases: [([String], [String])] = [
            (base + ["--vocab", empty], [empty, "no labels"]),
            (base + ["--vocab", bad], ["\(bad):3", "empty label"]),
            (base + ["--vocab", folder.path("missing.txt")], [folder.path("missing.txt")]),
            (base + ["--label", long], ["--label 1", "tokens"]),
            (base + ["--label", "dog", "--template", "a photo"], ["--template 1", "{}"]),
            (["vocab", "--clip", "/nonexistent/clip", "--label", "dog"], ["/nonexistent/clip"]),
        ]
        for (arguments, needles) in cases {
            let result = try runProcess(segwatch, arguments, timeout: 60)
            #expect(result.status == 1, "\(arguments)")
            let lines = result.errorOutput.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("segwatch: ") && needles.allSatisfy(lines[0].contains), "\(result.errorOutput)")
        }
        let usage = try runProcess(segwatch, ["vocab", "--clip", Self.clip], timeout: 30)
        #expect(usage.status != 0 && usage.errorOutput.contains("--label"))
    }

    // The zero-shot table against a vocabulary: the best --top-k labels, each named once.
    @Test func embedClassifiesAPictureAgainstAVocabulary() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let image = Fixtures.root.appendingPathComponent("images/bus.png").path
        let result = try runProcess(segwatch, ["embed", "--clip", Self.clip, "--image", image, "--label", "bus", "--label", "car|automobile",
                                               "--label", "sky", "--top-k", "2", "--cache", folder.path("cache"), "--threads", "2"], timeout: 60)
        #expect(result.status == 0, "\(result.errorOutput)")
        let rows = result.output.split(separator: "\n").dropFirst()
        #expect(rows.count == 2 && Set(rows.map { String($0.split(separator: " ").last!) }).count == 2, "\(result.output)")
    }
}

@Suite struct LabelCommandTests {
    static let fixtures = Fixtures.root
    static let image = Fixtures.root.appendingPathComponent("images/street_car.png").path
    // The fixture's AMG settings (mobile_sam/README.md): random weights give masks only there.
    static let generator = ["--points-per-side", "8", "--pred-iou-thresh", "0.49", "--stability-score-thresh", "0.35",
                            "--crop-n-layers", "1", "--crop-n-points-downscale-factor", "2", "--box-nms-thresh", "1.0"]

    private func arguments(_ folder: TemporaryFolder, _ name: String) -> [String] {
        ["label", Self.image, "--sam", Self.fixtures.appendingPathComponent("mobile_sam/mobile_sam.pt").path,
         "--clip", Self.fixtures.appendingPathComponent("clip_hf").path, "--label", "car|automobile", "--label", "road",
         "--label", "sky", "--stuff", "road", "--cache", folder.path("cache"), "--threads", "2",
         "--json-out", folder.path("\(name).json"), "--map-out", folder.path("\(name).png"),
         "--overlay-out", folder.path("\(name)-overlay.png"), "--crop-weight", "0.3"] + Self.generator
    }

    // Random weights: the labels mean nothing, the structure does. A map of the picture's size
    // holding legend indices or 255, segments whose RLE decodes at that size, and the same
    // bytes on a second run.
    @Test func mapAndSegmentsHaveThePicturesShapeAndRepeat() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for name in ["a", "b"] {
            let result = try runProcess(segwatch, arguments(folder, name), timeout: 300)
            #expect(result.status == 0, "\(result.errorOutput)")
        }
        let json = try Data(contentsOf: URL(fileURLWithPath: folder.path("a.json")))
        #expect(json == (try Data(contentsOf: URL(fileURLWithPath: folder.path("b.json")))))
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder.path("a.png"))) == Data(contentsOf: URL(fileURLWithPath: folder.path("b.png"))))
        let record = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(record["width"] as? Int == 480 && record["height"] as? Int == 322)
        #expect(record["legend"] as? [String] == ["car", "road", "sky"])
        let segments = try #require(record["segments"] as? [[String: Any]])
        #expect(!segments.isEmpty)
        for segment in segments {
            let rle = try #require(segment["segmentation"] as? [String: Any])
            let counts = try #require(rle["counts"] as? String)
            let decoded = try #require(rleFromString(counts, height: 322, width: 480))
            #expect(areaFromRLE(decoded) == segment["area"] as? Int)
            let label = try #require(segment["label"] as? String)
            #expect(["car", "road", "sky", "unknown"].contains(label))
            #expect((segment["stuff"] as? Bool) == (label == "road"))
        }
        let raw = try runProcess("/usr/bin/ffmpeg", ["-v", "error", "-i", folder.path("a.png"), "-f", "rawvideo", "-pix_fmt", "gray", "-"], timeout: 30)
        #expect(raw.stdout.count == 480 * 322 && Set(raw.stdout).isSubset(of: [0, 1, 2, 255]))
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder.path("a-overlay.png"))) == Data(contentsOf: URL(fileURLWithPath: folder.path("b-overlay.png"))))
        let overlay = try runProcess("/usr/bin/ffmpeg", ["-v", "error", "-i", folder.path("a-overlay.png"), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], timeout: 30)
        #expect(overlay.stdout.count == 480 * 322 * 3)
        #expect((record["settings"] as? [String: Any])?["crop_weight"] as? Double == 0.3)
    }

    // `--label person` alone once made every segment "person 1.0". With the background prompts
    // some segments are unknown, and a person's score is a share, not always 1; --no-background
    // gives the old closed-set answer.
    @Test func aSingleLabelDoesNotMatchEverything() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        func segments(_ extra: [String]) throws -> [[String: Any]] {
            let out = folder.path("one\(extra.count).json")
            let result = try runProcess(segwatch, ["label", Self.image, "--sam", Self.fixtures.appendingPathComponent("mobile_sam/mobile_sam.pt").path,
                                                   "--clip", Self.fixtures.appendingPathComponent("clip_hf").path, "--label", "person",
                                                   "--cache", folder.path("cache"), "--threads", "2", "--json-out", out] + Self.generator + extra,
                                        timeout: 300)
            #expect(result.status == 0, "\(result.errorOutput)")
            let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
            return record?["segments"] as? [[String: Any]] ?? []
        }
        let closed = try segments(["--no-background"])
        #expect(!closed.isEmpty && closed.allSatisfy { $0["label"] as? String == "person" && $0["score"] as? Double == 1 })
        let open = try segments([])
        #expect(open.count == closed.count)
        #expect(open.contains { $0["label"] as? String == "unknown" }, "\(open.map { $0["label"] ?? "" })")
        #expect(open.allSatisfy { ($0["score"] as? Double ?? 1) < 1 })
    }

    @Test func badInputsAreOneClearLine() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let long = Array(repeating: "word", count: 80).joined(separator: " ")
        let sam = Self.fixtures.appendingPathComponent("mobile_sam/mobile_sam.pt").path
        let clip = Self.fixtures.appendingPathComponent("clip_hf").path
        let cases: [([String], String)] = [
            (["label", Self.image, "--sam", sam, "--clip", clip, "--label", long], "tokens"),
            (["label", Self.image, "--sam", "/nonexistent/sam.pt", "--clip", clip, "--label", "car"], "/nonexistent/sam.pt"),
            (["label", Self.image, "--sam", sam, "--clip", "/nonexistent/clip", "--label", "car"], "/nonexistent/clip"),
            (["label", "/nonexistent/picture.png", "--sam", sam, "--clip", clip, "--label", "car"], "/nonexistent/picture.png"),
            (["label", Fixtures.media("carphone.mp4"), "--frame", "500", "--sam", sam, "--clip", clip, "--label", "car"], "--frame 500"),
            (["label", Self.image, "--sam", sam, "--clip", clip, "--label", "car", "--head", sam], "segment head"),
            (["label", Self.image, "--sam", sam, "--clip", clip, "--label", "car", "--overlay-out", folder.path("o.png"), "--font", "/nonexistent/font.ttf"], "/nonexistent/font.ttf"),
        ]
        for (arguments, needle) in cases {
            let result = try runProcess(segwatch, arguments + ["--cache", folder.path("cache")], timeout: 120)
            #expect(result.status == 1, "\(arguments)")
            let lines = result.errorOutput.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("segwatch: ") && lines[0].contains(needle), "\(result.errorOutput)")
        }
        let empty = try runProcess(segwatch, ["label", Self.image, "--sam", sam, "--clip", clip], timeout: 30)
        #expect(empty.status != 0 && empty.errorOutput.contains("--label"))
        let stuff = try runProcess(segwatch, ["label", Self.image, "--sam", sam, "--clip", clip, "--label", "car", "--stuff", "sky"], timeout: 30)
        #expect(stuff.status != 0 && stuff.errorOutput.contains("sky"))
    }
}

/// The binary copied out of the build folder, as an install puts it, works from anywhere: what
/// it loads at run time (OpenAI's BPE vocabulary, for open_clip folders) is built in, not
/// looked up in the build folder.
@Suite struct InstalledBinaryTests {
    @Test func aCopyEmbedsWithAnOpenCLIPFolder() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let copy = folder.path("bin/segwatch"), empty = folder.path("empty")
        try FileManager.default.createDirectory(atPath: folder.path("bin"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: segwatch, toPath: copy)
        let clip = Fixtures.root.appendingPathComponent("open_clip").path
        let embed = ["embed", "--clip", clip, "--text", "a photo of a cat", "--text", "a diagram"]
        let expected = try runProcess(segwatch, embed)
        #expect(expected.status == 0, "\(expected.errorOutput)")
        // The build folder hidden from the copy in a mount namespace of its own (root, as CI
        // runs); elsewhere the copy still runs from another folder.
        let build = URL(fileURLWithPath: segwatch).deletingLastPathComponent().deletingLastPathComponent().path
        let hidden = getuid() == 0
        let result = hidden
            ? try runProcess("/usr/bin/unshare", ["-m", "sh", "-c", "mount --bind \"$1\" \"$2\" && cd / && shift 2 && exec \"$@\"",
                                                  "sh", empty, build, copy] + embed)
            : try runProcess(copy, embed)
        #expect(result.status == 0 && !result.errorOutput.contains("Fatal error"), "\(result.errorOutput)")
        #expect(result.output == expected.output && !result.output.isEmpty, "\(result.output) vs \(expected.output)")
    }
}

@Suite struct LabelWithUSEHeadTests {
    /// A head for the fixture encoders (CLIP 64 wide, D 32; DINOv2 48 wide), `proj` at zero:
    /// the training-free embedding, so the labels are the plain run's.
    private func head(_ folder: TemporaryFolder) throws -> String {
        let path = folder.path("head.safetensors")
        var tensors: [(String, SafeTensorsValue)] = []
        func add(_ name: String, _ shape: [Int], _ value: Float) {
            tensors.append((name, .float32(Tensor(shape: shape, values: [Float](repeating: value, count: shape.reduce(1, *))))))
        }
        for (prefix, width, levels) in [("clip", 64, 2), ("dino", 48, 1)] {
            for i in 0..<levels { add("\(prefix).norm.\(i).weight", [width], 1); add("\(prefix).norm.\(i).bias", [width], 0) }
            add("\(prefix).scale", [levels], 1)
        }
        add("cls.clip.norm.weight", [32], 1); add("cls.clip.norm.bias", [32], 0)
        add("cls.dino.norm.weight", [48], 1); add("cls.dino.norm.bias", [48], 0)
        add("cls.scale", [2], 1); add("proj.weight", [32, 64 + 48 + 32 + 48], 0); add("proj.bias", [32], 0); add("logit_scale", [], 4.6)
        try writeSafeTensors(tensors, metadata: ["format": "segwatch-use-head/1", "clip_levels": "[1, 3]", "dino_levels": "[2]"], to: path)
        return path
    }

    private func label(_ folder: TemporaryFolder, _ name: String, _ extra: [String]) throws -> ProcessResult {
        try runProcess(segwatch, ["label", LabelCommandTests.image, "--sam", Fixtures.root.appendingPathComponent("mobile_sam/mobile_sam.pt").path,
                                  "--clip", Fixtures.root.appendingPathComponent("clip_hf").path, "--label", "car", "--label", "road",
                                  "--cache", folder.path("cache"), "--threads", "2", "--clip-size", "64",
                                  "--json-out", folder.path("\(name).json")] + LabelCommandTests.generator + extra, timeout: 300)
    }

    // A USE head with --dino labels the picture through DINOv2 too; with proj at zero its
    // segments and labels are the plain run's; the record names the DINOv2 model's digest.
    @Test func aUSEHeadLabelsThroughDINOv2() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let head = try head(folder), dino = Fixtures.root.appendingPathComponent("dinov2").path
        let plain = try label(folder, "plain", [])
        #expect(plain.status == 0, "\(plain.errorOutput)")
        let used = try label(folder, "head", ["--head", head, "--dino", dino, "--dino-size", "112"])
        #expect(used.status == 0, "\(used.errorOutput)")
        #expect(used.errorOutput.contains("names no CLIP or DINOv2 checkpoint"))
        func record(_ name: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.path("\(name).json")))) as? [String: Any])
        }
        let (a, b) = (try record("plain"), try record("head"))
        let labelsA = (a["segments"] as? [[String: Any]])?.map { $0["label"] as? String }
        let labelsB = (b["segments"] as? [[String: Any]])?.map { $0["label"] as? String }
        #expect(labelsA != nil && labelsA! == labelsB!)
        #expect(((b["models"] as? [String: Any])?["dino"] as? String)?.count == 16)
        #expect((b["settings"] as? [String: Any])?["dino_size"] as? Int == 112)

        let noDino = try label(folder, "x", ["--head", head])
        #expect(noDino.status != 0 && noDino.errorOutput.contains("reads DINOv2's layers [2]: give the DINOv2 model"), "\(noDino.errorOutput)")
        let noHead = try label(folder, "y", ["--dino", dino])
        #expect(noHead.status != 0 && noHead.errorOutput.contains("--dino is read by a USE head"), "\(noHead.errorOutput)")
    }
}
