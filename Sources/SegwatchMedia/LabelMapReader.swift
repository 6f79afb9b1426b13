import CFFmpeg

/// A label map as read from an image file: one class index per pixel, row-major.
public struct LabelMap: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let values: [UInt16]
    /// 8 or 16: the bits the file stores per index (its "unknown" is 255 or 65535).
    public let bitDepth: Int

    public init(width: Int, height: Int, values: [UInt16], bitDepth: Int) {
        precondition(values.count == width * height && (bitDepth == 8 || bitDepth == 16), "label map \(width)x\(height), \(bitDepth) bits")
        (self.width, self.height, self.values, self.bitDepth) = (width, height, values, bitDepth)
    }

    /// The index an unlabeled pixel holds: the largest the file can store.
    public var unknownIndex: Int { bitDepth == 8 ? 255 : 65535 }
}

/// Reads a label map (a PNG as segmentation datasets ship them, or anything else FFmpeg decodes
/// losslessly) without any color conversion: 8-bit gray, 16-bit gray, or a palette picture whose
/// palette indices are the classes (Pascal VOC's and Pascal-Context's annotations).
public func readLabelMap(_ path: String) throws(MediaError) -> LabelMap {
    do {
        let decoder = try VideoDecoder(InputSpec(path))
        let map = try decoder.nextDecoded { frame throws(MediaError) -> LabelMap in
            let (width, height) = (Int(frame.pointee.width), Int(frame.pointee.height))
            let format = AVPixelFormat(rawValue: frame.pointee.format)
            let stride = Int(frame.pointee.linesize.0)
            guard let data = frame.pointee.data.0, stride > 0 else {
                throw .invalidArgument(input: path, reason: "the decoder returned no pixels")
            }
            var values = [UInt16](repeating: 0, count: width * height)
            switch format {
            case AV_PIX_FMT_GRAY8, AV_PIX_FMT_PAL8:
                for y in 0..<height { for x in 0..<width { values[y * width + x] = UInt16(data[y * stride + x]) } }
                return LabelMap(width: width, height: height, values: values, bitDepth: 8)
            case AV_PIX_FMT_GRAY16BE, AV_PIX_FMT_GRAY16LE:
                let bigEndian = format == AV_PIX_FMT_GRAY16BE
                for y in 0..<height {
                    for x in 0..<width {
                        let (a, b) = (UInt16(data[y * stride + 2 * x]), UInt16(data[y * stride + 2 * x + 1]))
                        values[y * width + x] = bigEndian ? a << 8 | b : b << 8 | a
                    }
                }
                return LabelMap(width: width, height: height, values: values, bitDepth: 16)
            default:
                let name = av_get_pix_fmt_name(format).map { String(cString: $0) } ?? "format \(format.rawValue)"
                throw .invalidArgument(input: path, reason: "a label map must hold one class index per pixel (8- or 16-bit gray, or a palette picture); this one is \(name)")
            }
        }
        guard let map else { throw MediaError.invalidArgument(input: path, reason: "it holds no picture") }
        return map
    } catch let error as MediaError {
        throw error
    } catch {
        throw .invalidArgument(input: path, reason: "\(error)")
    }
}
