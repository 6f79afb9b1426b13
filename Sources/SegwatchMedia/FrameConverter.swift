import CFFmpeg

/// swscale's interpolation, for frames resized on conversion.
public enum ScalerKind: String, Sendable, Hashable, CaseIterable {
    case fastBilinear = "fast_bilinear"
    case bilinear, bicubic, area, point, lanczos

    var flags: Int32 {
        switch self {
        case .fastBilinear: return SWS_FAST_BILINEAR
        case .bilinear: return SWS_BILINEAR
        case .bicubic: return SWS_BICUBIC
        case .area: return SWS_AREA
        case .point: return SWS_POINT
        case .lanczos: return SWS_LANCZOS
        }
    }
}

/// Converts decoded `AVFrame`s into `VideoFrame`s of a chosen size and layout, writing
/// straight into pooled frame storage (one swscale pass, no intermediate copy).
final class FrameConverter {
    let width: Int?
    let height: Int?
    let layout: PixelLayout
    let scaler: ScalerKind
    private var context: OpaquePointer?
    private let pool = FramePool()

    init(width: Int?, height: Int?, layout: PixelLayout, scaler: ScalerKind) {
        self.width = width
        self.height = height
        self.layout = layout
        self.scaler = scaler
    }

    deinit { sws_freeContext(context) }

    private var targetFormat: AVPixelFormat {
        switch layout {
        case .rgb24: return AV_PIX_FMT_RGB24
        case .bgr24: return AV_PIX_FMT_BGR24
        case .gray8: return AV_PIX_FMT_GRAY8
        case .rgbPlanarFloat: return AV_PIX_FMT_GBRPF32LE
        }
    }

    /// Converts `frame`; `pts` in seconds and `index` are carried into the result.
    func convert(_ frame: UnsafePointer<AVFrame>, pts: Double?, index: Int, input: String) throws -> VideoFrame {
        let sourceWidth = Int(frame.pointee.width), sourceHeight = Int(frame.pointee.height)
        let targetWidth = width ?? sourceWidth, targetHeight = height ?? sourceHeight
        var sourceFormat = AVPixelFormat(frame.pointee.format)
        // The deprecated JPEG-range formats are the plain ones with full range; say so
        // explicitly, as ffmpeg's scale filter does, instead of letting swscale guess.
        var fullRange = frame.pointee.color_range == AVCOL_RANGE_JPEG
        switch sourceFormat {
        case AV_PIX_FMT_YUVJ420P: sourceFormat = AV_PIX_FMT_YUV420P; fullRange = true
        case AV_PIX_FMT_YUVJ422P: sourceFormat = AV_PIX_FMT_YUV422P; fullRange = true
        case AV_PIX_FMT_YUVJ444P: sourceFormat = AV_PIX_FMT_YUV444P; fullRange = true
        case AV_PIX_FMT_YUVJ440P: sourceFormat = AV_PIX_FMT_YUV440P; fullRange = true
        default: break
        }

        context = sws_getCachedContext(
            context, Int32(sourceWidth), Int32(sourceHeight), sourceFormat,
            Int32(targetWidth), Int32(targetHeight), targetFormat, scaler.flags, nil, nil, nil)
        guard let context else {
            let name = av_get_pix_fmt_name(sourceFormat).map { String(cString: $0) } ?? "unknown"
            throw MediaError.ffmpeg(input: input, call: "sws_getCachedContext", code: 0,
                                    message: "cannot convert \(sourceWidth)x\(sourceHeight) \(name) to "
                                        + "\(targetWidth)x\(targetHeight) \(layout.rawValue)")
        }
        if fullRange {
            var inverse: UnsafeMutablePointer<Int32>?, table: UnsafeMutablePointer<Int32>?
            var sourceRange: Int32 = 0, targetRange: Int32 = 0
            var brightness: Int32 = 0, contrast: Int32 = 0, saturation: Int32 = 0
            if sws_getColorspaceDetails(context, &inverse, &sourceRange, &table, &targetRange,
                                        &brightness, &contrast, &saturation) >= 0, sourceRange != 1 {
                sws_setColorspaceDetails(context, inverse, 1, table, targetRange, brightness, contrast, saturation)
            }
        }

        let storage = pool.take(capacity: layout.byteCount(width: targetWidth, height: targetHeight))
        let rowBytes = layout.rowBytes(width: targetWidth)
        var planes: [UnsafeMutablePointer<UInt8>?] = [storage.bytes.assumingMemoryBound(to: UInt8.self), nil, nil, nil]
        var strides: [Int32] = [Int32(rowBytes), 0, 0, 0]
        if layout == .rgbPlanarFloat {
            // swscale's planar RGB is ordered G, B, R; point each plane at its place in R, G, B.
            let plane = targetWidth * targetHeight * 4
            let base = storage.bytes.assumingMemoryBound(to: UInt8.self)
            planes = [base + plane, base + 2 * plane, base, nil]
            strides = [Int32(rowBytes), Int32(rowBytes), Int32(rowBytes), 0]
        }
        let sourcePlanes = withUnsafeBytes(of: frame.pointee.data) { raw in
            Array(raw.bindMemory(to: UnsafeMutablePointer<UInt8>?.self).prefix(4)).map { UnsafePointer($0) }
        }
        let sourceStrides = withUnsafeBytes(of: frame.pointee.linesize) { raw in
            Array(raw.bindMemory(to: Int32.self).prefix(4))
        }
        let rows = sws_scale(context, sourcePlanes, sourceStrides, 0, Int32(sourceHeight), planes, strides)
        guard rows == Int32(targetHeight) else {
            throw MediaError.ffmpeg(input: input, call: "sws_scale", code: rows,
                                    message: "wrote \(rows) rows, expected \(targetHeight)")
        }
        return VideoFrame(width: targetWidth, height: targetHeight, layout: layout, pts: pts,
                          index: index, storage: storage)
    }
}
