import CCPUID
import Glibc
import SegwatchKernels
import SegwatchKernelsAVX2

/// The build of the CPU kernels this machine runs: `SegwatchKernels` is compiled for any
/// x86-64 (SSE2), `SegwatchKernelsAVX2` from the same source for x86-64-v3 (AVX2 and FMA,
/// twice the lanes and one instruction per multiply-add). Chosen once, from CPUID; the
/// environment variable `SEGWATCH_KERNELS=x86-64` forces the baseline build.
struct KernelSet: Sendable {
    typealias Unary = @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    typealias Binary = @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void

    let name: String
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
        name: "x86-64",
        gelu: SegwatchKernels.gelu, geluTanh: SegwatchKernels.geluTanh, quickGelu: SegwatchKernels.quickGelu,
        relu: SegwatchKernels.relu, sigmoid: SegwatchKernels.sigmoid,
        add: SegwatchKernels.add, subtract: SegwatchKernels.subtract, multiply: SegwatchKernels.multiply,
        divide: SegwatchKernels.divide, affine: SegwatchKernels.affine, softmaxRow: SegwatchKernels.softmaxRow,
        softmaxRows: SegwatchKernels.softmaxRows,
        layerNormRow: SegwatchKernels.layerNormRow, layerNormPixels: SegwatchKernels.layerNormPixels,
        depthwiseConv2d: SegwatchKernels.depthwiseConv2d,
        depthwiseConv2dChannelsLast: SegwatchKernels.depthwiseConv2dChannelsLast)

    static let avx2 = KernelSet(
        name: "x86-64-v3",
        gelu: SegwatchKernelsAVX2.gelu, geluTanh: SegwatchKernelsAVX2.geluTanh, quickGelu: SegwatchKernelsAVX2.quickGelu,
        relu: SegwatchKernelsAVX2.relu, sigmoid: SegwatchKernelsAVX2.sigmoid,
        add: SegwatchKernelsAVX2.add, subtract: SegwatchKernelsAVX2.subtract, multiply: SegwatchKernelsAVX2.multiply,
        divide: SegwatchKernelsAVX2.divide, affine: SegwatchKernelsAVX2.affine, softmaxRow: SegwatchKernelsAVX2.softmaxRow,
        softmaxRows: SegwatchKernelsAVX2.softmaxRows,
        layerNormRow: SegwatchKernelsAVX2.layerNormRow, layerNormPixels: SegwatchKernelsAVX2.layerNormPixels,
        depthwiseConv2d: SegwatchKernelsAVX2.depthwiseConv2d,
        depthwiseConv2dChannelsLast: SegwatchKernelsAVX2.depthwiseConv2dChannelsLast)

    /// Whether this CPU can run the x86-64-v3 build.
    static let avx2Supported = ccpuid_supports_x86_64_v3() != 0
}

/// The kernels every CPU op calls.
let kernels: KernelSet = {
    let forced = getenv("SEGWATCH_KERNELS").map { String(cString: $0) }
    return KernelSet.avx2Supported && forced != KernelSet.baseline.name ? .avx2 : .baseline
}()

/// The name of the kernel build in use ("x86-64-v3" or "x86-64"), for benchmarks and logs.
public var cpuKernelSet: String { kernels.name }
