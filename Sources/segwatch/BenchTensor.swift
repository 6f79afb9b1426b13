import ArgumentParser
import COpenBLAS
import Dispatch
import Foundation
import SegwatchService
import SegwatchSynthetic
import SegwatchTensor

/// Options of the tensor benchmarks.
struct TensorBenchOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and segwatch's kernels.")
    var threads: Int = 2

    func validate() throws {
        guard threads > 0 else { throw ValidationError("--threads must be positive") }
    }
}

struct BenchGemm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "sgemm GFLOP/s through segwatch's tensor layer against a plain OpenBLAS call.",
        discussion: """
            Times `matmul` on two SIZE x SIZE tensors, and `cblas_sgemm` on preallocated buffers \
            of the same size, alternating the two in one run. `overhead_percent` is how much \
            slower the layer is than the plain call.
            """)

    @OptionGroup var options: BenchOptions
    @OptionGroup var tensor: TensorBenchOptions

    @Option(help: "M = N = K.")
    var size: Int = 1024

    mutating func run() throws {
        guard size > 0 else { throw ValidationError("--size must be positive") }
        let engine = CPUEngine(threads: tensor.threads)
        try engine.run { try measure(engine) }
    }

    private func measure(_ engine: CPUEngine) throws {
        let n = size
        let a = benchTensor([n, n], seed: 1), b = benchTensor([n, n], seed: 2)
        let c = Tensor(zeros: [n, n])
        func layer() -> Double {
            let start = DispatchTime.now()
            _ = matmul(a, b)
            return milliseconds(since: start)
        }
        func plain() -> Double {
            let start = DispatchTime.now()
            plainSgemm(a, b, into: c)
            return milliseconds(since: start)
        }
        for _ in 0..<options.warmup { _ = layer(); _ = plain() }
        var layerSamples: [Double] = [], plainSamples: [Double] = []
        for _ in 0..<options.runs {
            layerSamples.append(layer())
            plainSamples.append(plain())
        }
        let flop = 2 * Double(n) * Double(n) * Double(n)
        let layerMs = median(layerSamples), plainMs = median(plainSamples)
        var result = BenchResult()
        result["size"] = .number(Double(n))
        result["threads"] = .number(Double(tensor.threads))
        result["runs"] = .number(Double(options.runs))
        result["segwatch_ms"] = .number(layerMs)
        result["openblas_ms"] = .number(plainMs)
        result["segwatch_gflops"] = .number(flop / layerMs / 1e6)
        result["openblas_gflops"] = .number(flop / plainMs / 1e6)
        result["overhead_percent"] = .number((layerMs / plainMs - 1) * 100)
        result.samples["segwatch_ms"] = layerSamples
        result.samples["openblas_ms"] = plainSamples
        print(options.json ? try result.json() : result.text())
    }
}

struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "SAM-sized ops as fractions of a roofline measured in the same run.",
        discussion: """
            Products are compared with OpenBLAS's sgemm rate (1024^3); elementwise ops with \
            memory bandwidth (a two-thread copy of 256 MiB, counting bytes read plus written). \
            An op's fraction is its ideal time at that rate over its measured time: 1 is the \
            roofline. Memory-bound ops count one read of each input and one write of the output.
            """)

    @OptionGroup var options: BenchOptions
    @OptionGroup var tensor: TensorBenchOptions

    mutating func run() throws {
        try CPUEngine(threads: tensor.threads).run { try measure() }
    }

    private func measure() throws {
        let runs = options.runs, warmup = options.warmup
        var result = BenchResult()
        func time(_ name: String, _ body: () -> Void) -> Double {
            for _ in 0..<warmup { body() }
            let samples = (0..<runs).map { _ in
                let start = DispatchTime.now()
                body()
                return milliseconds(since: start)
            }
            result.samples["\(name)_ms"] = samples
            result["\(name)_ms"] = .number(median(samples))
            return median(samples)
        }

        // Rooflines.
        let n = 1024
        let a = benchTensor([n, n], seed: 1), b = benchTensor([n, n], seed: 2), c = Tensor(zeros: [n, n])
        let sgemmMs = time("sgemm_1024") { plainSgemm(a, b, into: c) }
        let peakGflops = 2 * pow(Double(n), 3) / sgemmMs / 1e6
        result["sgemm_gflops"] = .number(peakGflops)
        let copyCount = 64 << 20
        let source = Tensor(zeros: [copyCount]), target = Tensor(zeros: [copyCount])
        let threads = tensor.threads
        let copyMs = time("copy_256mib") {
            let chunk = copyCount / threads
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                memcpy(target.pointer + t * chunk, source.pointer + t * chunk, chunk * 4)
            }
        }
        let bandwidth = Double(2 * copyCount * 4) / copyMs / 1e6  // GB/s
        result["bandwidth_gbps"] = .number(bandwidth)
        func memoryBound(_ name: String, bytes: Double, ms: Double) {
            result["\(name)_fraction_of_bandwidth"] = .number(bytes / (bandwidth * 1e6) / ms)
        }

        // Attention over SAM's 64x64 tokens: dim 256, 8 heads.
        let tokens = 4096, heads = 8, depth = 32
        let q = benchTensor([1, heads, tokens, depth], seed: 3), k = benchTensor([1, heads, tokens, depth], seed: 4)
        let v = benchTensor([1, heads, tokens, depth], seed: 5)
        let attentionMs = time("attention_4096") {
            _ = attention(q: q, k: k, v: v, .init(scale: 1 / Float(depth).squareRoot()))
        }
        let attentionFlop = 4 * Double(tokens) * Double(tokens) * Double(heads * depth)
        result["attention_4096_gflops"] = .number(attentionFlop / attentionMs / 1e6)
        result["attention_4096_fraction_of_sgemm"] = .number(attentionFlop / attentionMs / 1e6 / peakGflops)

        // ViT-B's block activations: LayerNorm over 4096 x 768, GELU over the 4096 x 3072 MLP.
        let tokensX = benchTensor([1, 64, 64, 768], seed: 6)
        let gamma = benchTensor([768], seed: 7), beta = benchTensor([768], seed: 8)
        let layerNormMs = time("layer_norm_4096x768") { _ = layerNorm(tokensX, weight: gamma, bias: beta, eps: 1e-6) }
        memoryBound("layer_norm_4096x768", bytes: Double(2 * tokensX.count * 4), ms: layerNormMs)
        let hidden = benchTensor([4096, 3072], seed: 9)
        let geluMs = time("gelu_4096x3072") { _ = activate(hidden, .gelu) }
        memoryBound("gelu_4096x3072", bytes: Double(2 * hidden.count * 4), ms: geluMs)

        // TinyViT's first MBConv: a 3x3 depthwise convolution over 256 channels at 256x256.
        let image = benchTensor([1, 256, 256, 256], seed: 10), filters = benchTensor([256, 1, 3, 3], seed: 11)
        let depthwiseMs = time("depthwise_3x3_256x256x256") {
            _ = conv2d(image, weight: filters, bias: nil, Conv2dOptions(padding: 1, groups: 256))
        }
        memoryBound("depthwise_3x3_256x256x256", bytes: Double(2 * image.count * 4), ms: depthwiseMs)
        result["threads"] = .number(Double(threads))
        result["runs"] = .number(Double(runs))
        print(options.json ? try result.json() : result.text())
    }
}

/// `c = a b` for square contiguous matrices, straight through OpenBLAS on its own threads
/// (segwatch otherwise keeps OpenBLAS single-threaded): the baseline.
private func plainSgemm(_ a: Tensor, _ b: Tensor, into c: Tensor) {
    let n = Int32(a.shape[0])
    openblas_set_num_threads(Int32(CPUEngine.current.threads))
    defer { openblas_set_num_threads(1) }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a.pointer, n, b.pointer, n, 0, c.pointer, n)
}
