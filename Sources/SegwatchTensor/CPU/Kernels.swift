import CCPUID
import Glibc
import SegwatchKernels
import SegwatchKernelsAVX2
import SegwatchKernelsAVX512

/// The build of the CPU kernels this machine runs: `SegwatchKernels` is compiled for any
/// x86-64 (SSE2), `SegwatchKernelsAVX2` from the same source for x86-64-v3 (AVX2 and FMA,
/// twice the lanes and one instruction per multiply-add), `SegwatchKernelsAVX512` for
/// x86-64-v4 (sixteen lanes, 32 registers). With each go the product on packed weights and
/// the attention head it calls (cgemm.h): none on baseline x86-64, where OpenBLAS does the
/// products. Chosen once, from CPUID; the environment variable `SEGWATCH_KERNELS` (`x86-64`,
/// `avx2`) asks for a build below the best this CPU runs, to compare them.
struct KernelSet: Sendable {
    /// The product and attention head of cgemm.h that a build calls.
    enum Product: Sendable { case avx2, avx512 }

    typealias Unary = @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    typealias Binary = @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void

    let name: String
    let product: Product?
    let gelu, geluTanh, quickGelu, relu, sigmoid: Unary
    let add, subtract, multiply, divide: Binary
    let affine: @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, _ scale: Float, _ shift: Float) -> Void
    let softmaxRow: @Sendable (UnsafeMutablePointer<Float>, Int) -> Void
    let softmaxRows: @Sendable (UnsafeMutablePointer<Float>, _ rows: Int, _ width: Int) -> Void
    let layerNormRow: @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int,
                                 UnsafePointer<Float>, UnsafePointer<Float>, Float) -> Void
    let layerNormPixels: @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int,
                                    UnsafePointer<Float>, UnsafePointer<Float>, Float,
                                    UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    let depthwiseConv2d: @Sendable (UnsafePointer<Float>, Int, Int, UnsafePointer<Float>, Int, Int,
                                    ConvolutionAxis, ConvolutionAxis, Float, UnsafeMutablePointer<Float>, Int, Int) -> Void
    let depthwiseConv2dChannelsLast: @Sendable (UnsafePointer<Float>, Int, Int, Int, UnsafePointer<Float>, Int, Int,
                                                ConvolutionAxis, ConvolutionAxis, UnsafePointer<Float>,
                                                UnsafeMutablePointer<Float>, Int, Range<Int>) -> Void

    static let baseline = KernelSet(
        name: "x86-64", product: nil,
        gelu: SegwatchKernels.gelu, geluTanh: SegwatchKernels.geluTanh, quickGelu: SegwatchKernels.quickGelu,
        relu: SegwatchKernels.relu, sigmoid: SegwatchKernels.sigmoid,
        add: SegwatchKernels.add, subtract: SegwatchKernels.subtract, multiply: SegwatchKernels.multiply,
        divide: SegwatchKernels.divide, affine: SegwatchKernels.affine, softmaxRow: SegwatchKernels.softmaxRow,
        softmaxRows: SegwatchKernels.softmaxRows,
        layerNormRow: SegwatchKernels.layerNormRow, layerNormPixels: SegwatchKernels.layerNormPixels,
        depthwiseConv2d: SegwatchKernels.depthwiseConv2d,
        depthwiseConv2dChannelsLast: SegwatchKernels.depthwiseConv2dChannelsLast)

    static let avx2 = KernelSet(
        name: "avx2", product: .avx2,
        gelu: SegwatchKernelsAVX2.gelu, geluTanh: SegwatchKernelsAVX2.geluTanh, quickGelu: SegwatchKernelsAVX2.quickGelu,
        relu: SegwatchKernelsAVX2.relu, sigmoid: SegwatchKernelsAVX2.sigmoid,
        add: SegwatchKernelsAVX2.add, subtract: SegwatchKernelsAVX2.subtract, multiply: SegwatchKernelsAVX2.multiply,
        divide: SegwatchKernelsAVX2.divide, affine: SegwatchKernelsAVX2.affine, softmaxRow: SegwatchKernelsAVX2.softmaxRow,
        softmaxRows: SegwatchKernelsAVX2.softmaxRows,
        layerNormRow: SegwatchKernelsAVX2.layerNormRow, layerNormPixels: SegwatchKernelsAVX2.layerNormPixels,
        depthwiseConv2d: SegwatchKernelsAVX2.depthwiseConv2d,
        depthwiseConv2dChannelsLast: SegwatchKernelsAVX2.depthwiseConv2dChannelsLast)

    static let avx512 = KernelSet(
        name: "avx512", product: .avx512,
        gelu: SegwatchKernelsAVX512.gelu, geluTanh: SegwatchKernelsAVX512.geluTanh, quickGelu: SegwatchKernelsAVX512.quickGelu,
        relu: SegwatchKernelsAVX512.relu, sigmoid: SegwatchKernelsAVX512.sigmoid,
        add: SegwatchKernelsAVX512.add, subtract: SegwatchKernelsAVX512.subtract, multiply: SegwatchKernelsAVX512.multiply,
        divide: SegwatchKernelsAVX512.divide, affine: SegwatchKernelsAVX512.affine, softmaxRow: SegwatchKernelsAVX512.softmaxRow,
        softmaxRows: SegwatchKernelsAVX512.softmaxRows,
        layerNormRow: SegwatchKernelsAVX512.layerNormRow, layerNormPixels: SegwatchKernelsAVX512.layerNormPixels,
        depthwiseConv2d: SegwatchKernelsAVX512.depthwiseConv2d,
        depthwiseConv2dChannelsLast: SegwatchKernelsAVX512.depthwiseConv2dChannelsLast)

    /// The builds this CPU can run, baseline first and the best last.
    static let supported: [KernelSet] = ccpuid_supports_x86_64_v4() != 0 ? [baseline, avx2, avx512]
        : ccpuid_supports_x86_64_v3() != 0 ? [baseline, avx2] : [baseline]
}

/// The kernels every CPU op calls: the best build this CPU runs, or the one `SEGWATCH_KERNELS`
/// names when the CPU runs it.
let kernels: KernelSet = {
    let asked = getenv("SEGWATCH_KERNELS").map { String(cString: $0) }
    return KernelSet.supported.first { $0.name == asked } ?? KernelSet.supported.last!
}()

/// The name of the kernel build in use (`x86-64`, `avx2` or `avx512`), for benchmarks and logs.
public var cpuKernelSet: String { kernels.name }

/// Whether this CPU runs the bfloat16 product (AVX512_BF16), and so `--precision bfloat16`:
/// only where weights are packed (not with `SEGWATCH_GEMM=openblas`).
public let cpuRunsBFloat16 = ccpuid_supports_avx512_bf16() != 0 && packsWeights

/// The CPU, as benchmarks report it: its brand string and whether segwatch runs AVX-512 on it.
public struct CPUDescription: Sendable {
    public let model: String
    public let avx512: Bool

    public static let current: CPUDescription = {
        var brand = [CChar](repeating: 0, count: 49)
        ccpuid_brand(&brand)
        let model = String(decoding: brand.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Brand strings are padded with spaces, some at the front.
        let words = model.split(separator: " ").joined(separator: " ")
        return CPUDescription(model: words, avx512: ccpuid_supports_x86_64_v4() != 0)
    }()
}
