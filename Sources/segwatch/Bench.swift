import ArgumentParser
import Foundation
import SegwatchService
import SegwatchMedia
import SegwatchTensor

/// `segwatch bench`: throughput figures, printed as one JSON object with `--json`.
///
/// Times are medians in milliseconds under keys ending in `_ms`; raw values are in `samples`.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure segwatch's throughput, optionally next to a peer in the same run.",
        subcommands: [BenchDecode.self, BenchGemm.self, BenchOps.self, BenchSam.self, BenchClip.self, BenchDino.self, BenchHead.self, BenchLabel.self, BenchPipeline.self, BenchServe.self, BenchLive.self, BenchStore.self])
}

/// Options every benchmark shares.
struct BenchOptions: ParsableArguments {
    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: "Timed runs; the median is reported.")
    var runs: Int = 5

    @Option(help: "Untimed runs first.")
    var warmup: Int = 1

    func validate() throws {
        guard runs > 0, warmup >= 0 else { throw ValidationError("--runs must be positive and --warmup not negative") }
    }
}

struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode every frame and convert it to RGB24; report frames per second.",
        discussion: """
            With --compare-ffmpeg (the default) the same work is timed through the ffmpeg CLI \
            (`ffmpeg -i INPUT -f rawvideo -pix_fmt rgb24 -y /dev/null`) in the same run, with \
            its process start-up measured apart (`ffmpeg -version`), as the reference benchmark does.
            """)

    @OptionGroup var source: InputOptions
    @OptionGroup var options: BenchOptions

    @Option(help: "Decoder threads; 0 = FFmpeg's automatic choice, as the ffmpeg CLI uses.")
    var threads: Int = 0

    @Flag(inversion: .prefixedNo, help: "Also time the ffmpeg CLI on the same input.")
    var compareFFmpeg = true

    func run() throws {
        let spec = source.spec
        var frames = 0
        func decodeOnce() throws -> Double {
            let start = DispatchTime.now()
            let decoder = try VideoDecoder(spec, options: DecodeOptions(layout: .rgb24, threads: threads))
            var count = 0
            while try decoder.next() != nil { count += 1 }
            frames = count
            return milliseconds(since: start)
        }
        let samples = try runReporting { () throws -> [Double] in
            for _ in 0..<options.warmup { _ = try decodeOnce() }
            return try (0..<options.runs).map { _ in try decodeOnce() }
        }
        let decodeMs = median(samples)
        var result = BenchResult()
        result["input"] = .string(spec.redacted)
        result["frames"] = .number(Double(frames))
        result["threads"] = .number(Double(threads))
        result["runs"] = .number(Double(options.runs))
        result["decode_ms"] = .number(decodeMs)
        result["fps"] = .number(Double(frames) / decodeMs * 1000)
        result.samples["decode_ms"] = samples

        if compareFFmpeg, let ffmpeg = findExecutable("ffmpeg") {
            let input = spec.format == "lavfi" ? ["-f", "lavfi", "-i", spec.url] : ["-i", spec.original]
            let command = ["-nostdin", "-hide_banner", "-loglevel", "error"] + input
                + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-y", "/dev/null"]
            for _ in 0..<options.warmup { _ = timeProcess(ffmpeg, command) }
            let whole = (0..<options.runs).map { _ in timeProcess(ffmpeg, command) }
            let exec = (0..<options.runs).map { _ in timeProcess(ffmpeg, ["-version"]) }
            let wholeMs = median(whole), execMs = median(exec)
            let ffmpegFPS = Double(frames) / wholeMs * 1000
            let ffmpegFPSExclExec = Double(frames) / max(wholeMs - execMs, 0.001) * 1000
            result["ffmpeg_ms"] = .number(wholeMs)
            result["ffmpeg_exec_ms"] = .number(execMs)
            result["ffmpeg_fps"] = .number(ffmpegFPS)
            result["ffmpeg_fps_excl_exec"] = .number(ffmpegFPSExclExec)
            // segwatch decodes in-process, so the fair peer figure leaves out ffmpeg's start-up.
            result["ratio_vs_ffmpeg"] = .number(Double(frames) / decodeMs * 1000 / ffmpegFPSExclExec)
            result["ratio_vs_ffmpeg_whole_process"] = .number(Double(frames) / decodeMs * 1000 / ffmpegFPS)
            result.samples["ffmpeg_ms"] = whole
            result.samples["ffmpeg_exec_ms"] = exec
        }
        print(options.json ? try result.json() : result.text())
    }
}

/// Op times per run, as `profile.NAME.OP_ms`; each product's rate, as `profile.NAME.OP_gflops`,
/// and all products' together, as `profile.NAME.products_gflops` (thread time inside
/// `concurrently`, wall time elsewhere: on more threads, compare with the peak of as many cores).
func record<B>(_ backend: ProfiledBackend<B>, runs: Int, as name: String, into result: inout BenchResult) {
    let report = backend.report()
    for entry in report where entry.milliseconds / Double(runs) >= 0.05 {
        result["profile.\(name).\(entry.op)_ms"] = .number(entry.milliseconds / Double(runs))
        if entry.flops > 0 { result["profile.\(name).\(entry.op)_gflops"] = .number(entry.flops / entry.milliseconds / 1e6) }
    }
    let products = report.filter { $0.flops > 0 }
    let (flops, milliseconds) = (products.map(\.flops).reduce(0, +), products.map(\.milliseconds).reduce(0, +))
    if milliseconds > 0 { result["profile.\(name).products_gflops"] = .number(flops / milliseconds / 1e6) }
    backend.reset()
}

/// A benchmark's figures: named values plus the raw samples behind the medians.
struct BenchResult: Encodable {
    enum Value: Encodable {
        case number(Double)
        case string(String)
        case bool(Bool)
        indirect case object([String: Value])

        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            // A figure not measured (no tracked frame, say) is NaN: JSON has no NaN, so null.
            case let .number(value): if value.isFinite { try container.encode(rounded(value)) } else { try container.encodeNil() }
            case let .string(value): try container.encode(value)
            case let .bool(value): try container.encode(value)
            case let .object(values): try container.encode(values)
            }
        }

        var text: String {
            switch self {
            case let .number(number): String(format: "%.3f", number)
            case let .string(string): string
            case let .bool(bool): "\(bool)"
            case let .object(values): values.keys.sorted().map { "\($0) \(values[$0]!.text)" }.joined(separator: ", ")
            }
        }
    }

    private var values: [String: Value] = [:]
    var samples: [String: [Double]] = [:]

    subscript(key: String) -> Value? {
        get { values[key] }
        set { values[key] = newValue }
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (key, value) in values { try container.encode(value, forKey: Key(stringValue: key)) }
        try container.encode(samples.mapValues { $0.map { $0.isFinite ? rounded($0) : nil } }, forKey: Key(stringValue: "samples"))
    }

    func json() throws -> String { try jsonString(self) }

    /// `cpu` (the model and whether it runs AVX-512) and `kernels` (the kernel build that ran:
    /// `x86-64`, `avx2` or `avx512`), so that figures from different machines are told apart.
    mutating func describeMachine() {
        let cpu = CPUDescription.current
        self["cpu"] = .object(["model": .string(cpu.model), "avx512": .bool(cpu.avx512)])
        self["kernels"] = .string(cpuKernelSet)
    }

    func text() -> String {
        values.keys.sorted().map { "\($0): \(values[$0]!.text)" }.joined(separator: "\n")
    }
}

/// Three decimals are plenty for milliseconds and frame rates.
private func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

extension BenchOptions {
    /// `body` run `warmup` times untimed, then `runs` times: each run's milliseconds.
    func samples(_ body: () throws -> Void) rethrows -> [Double] {
        for _ in 0..<warmup { try body() }
        return try (0..<runs).map { _ in
            let start = DispatchTime.now()
            try body()
            return milliseconds(since: start)
        }
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// Wall time of a whole child process, in milliseconds; its output is discarded.
func timeProcess(_ executable: String, _ arguments: [String]) -> Double {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    let start = DispatchTime.now()
    guard (try? process.run()) != nil else { return .nan }
    process.waitUntilExit()
    return milliseconds(since: start)
}

func findExecutable(_ name: String) -> String? {
    for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let candidate = "\(folder)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}
