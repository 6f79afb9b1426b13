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
        let rowBytes = Int32(layout.rowBytes(width: targetWidth))
        let base = storage.bytes.assumingMemoryBound(to: UInt8.self)
        // Plane pointers live in tuples on the stack: converting a frame allocates nothing.
        typealias Planes = (UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?,
                            UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?)
        var planes: Planes = (base, nil, nil, nil)
        var strides: (Int32, Int32, Int32, Int32) = (rowBytes, 0, 0, 0)
        if layout == .rgbPlanarFloat {
            // swscale's planar RGB is ordered G, B, R; point each plane at its place in R, G, B.
            let plane = targetWidth * targetHeight * 4
            planes = (base + plane, base + 2 * plane, base, nil)
            strides = (rowBytes, rowBytes, rowBytes, 0)
        }
        var sourcePlanes = frame.pointee.data
        var sourceStrides = frame.pointee.linesize
        let rows = withUnsafeBytes(of: &sourcePlanes) { sourcePlanes in
            withUnsafeBytes(of: &sourceStrides) { sourceStrides in
                withUnsafeBytes(of: &planes) { planes in
                    withUnsafeBytes(of: &strides) { strides in
                        sws_scale(context,
                                  sourcePlanes.baseAddress!.assumingMemoryBound(to: UnsafePointer<UInt8>?.self),
                                  sourceStrides.baseAddress!.assumingMemoryBound(to: Int32.self),
                                  0, Int32(sourceHeight),
                                  planes.baseAddress!.assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self),
                                  strides.baseAddress!.assumingMemoryBound(to: Int32.self))
                    }
                }
            }
        }
        guard rows == Int32(targetHeight) else {
            throw MediaError.ffmpeg(input: input, call: "sws_scale", code: rows,
                                    message: "wrote \(rows) rows, expected \(targetHeight)")
        }
        return VideoFrame(width: targetWidth, height: targetHeight, layout: layout, pts: pts,
                          index: index, storage: storage)
    }
}
