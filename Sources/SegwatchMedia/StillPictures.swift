import CFFmpeg
import Foundation

/// A picture to write as PNG: row-major values.
public enum PNGPicture: Sendable {
    /// An 8-bit gray picture (a label map of up to 256 classes).
    case gray8([UInt8])
    /// A 16-bit gray picture (a label map of more classes).
    case gray16([UInt16])
    /// R G B bytes.
    case rgb24([UInt8])

    var pixelFormat: AVPixelFormat {
        switch self {
        case .gray8: AV_PIX_FMT_GRAY8
        case .gray16: AV_PIX_FMT_GRAY16BE
        case .rgb24: AV_PIX_FMT_RGB24
        }
    }

    var bytesPerPixel: Int {
        switch self {
        case .gray8: 1
        case .gray16: 2
        case .rgb24: 3
        }
    }

    /// The bytes as PNG stores them (16-bit values big-endian).
    var bytes: [UInt8] {
        switch self {
        case let .gray8(values), let .rgb24(values): values
        case let .gray16(values): values.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        }
    }
}

/// Encodes one picture as PNG with libavcodec's encoder (lossless, so label indices survive) and
/// writes it atomically: a reader sees no file or the whole one.
public func writePNG(_ picture: PNGPicture, width: Int, height: Int, to path: String) throws(MediaError) {
    let data = try encodePNG(picture, width: width, height: height, name: path)
    do {
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw .encoderFailed(output: path, call: "write", message: (error as NSError).localizedDescription)
    }
}

/// One picture as a PNG file's bytes; `name` names it in errors.
public func encodePNG(_ picture: PNGPicture, width: Int, height: Int, name: String) throws(MediaError) -> Data {
    let pixels = picture.bytes
    guard pixels.count == width * height * picture.bytesPerPixel else {
        throw .encoderFailed(output: name, call: "encodePNG",
                             message: "\(pixels.count) bytes for a \(width)x\(height) picture of \(picture.bytesPerPixel) bytes per pixel")
    }
    let rowBytes = width * picture.bytesPerPixel
    return try encodeStill(AV_CODEC_ID_PNG, "PNG", format: picture.pixelFormat, width: width, height: height, name: name) { frame in
        let stride = Int(frame.pointee.linesize.0)
        pixels.withUnsafeBufferPointer { source in
            for y in 0..<height { (frame.pointee.data.0! + y * stride).update(from: source.baseAddress! + y * rowBytes, count: rowBytes) }
        }
    }
}

/// One RGB picture (`width * height * 3` bytes) as a baseline JPEG file's bytes, through
/// libavcodec's MJPEG encoder: full-range BT.601 YCbCr, chroma averaged over 2x2 blocks.
/// `quality` is libavcodec's quantizer, 2 (best) ... 31.
public func encodeJPEG(rgb pixels: [UInt8], width: Int, height: Int, quality: Int = 4, name: String) throws(MediaError) -> Data {
    guard pixels.count == width * height * 3 else {
        throw .encoderFailed(output: name, call: "encodeJPEG", message: "\(pixels.count) bytes for a \(width)x\(height) RGB picture")
    }
    return try encodeStill(AV_CODEC_ID_MJPEG, "MJPEG", format: AV_PIX_FMT_YUVJ420P, width: width, height: height, name: name, configure: { context in
        context.pointee.flags |= AV_CODEC_FLAG_QSCALE
        context.pointee.global_quality = Int32(max(2, min(31, quality))) * FF_QP2LAMBDA
    }) { frame in
        let (y, cb, cr) = (frame.pointee.data.0!, frame.pointee.data.1!, frame.pointee.data.2!)
        let (yStride, cbStride, crStride) = (Int(frame.pointee.linesize.0), Int(frame.pointee.linesize.1), Int(frame.pointee.linesize.2))
        func rgb(_ row: Int, _ column: Int) -> (Double, Double, Double) {
            let i = (min(row, height - 1) * width + min(column, width - 1)) * 3
            return (Double(pixels[i]), Double(pixels[i + 1]), Double(pixels[i + 2]))
        }
        func byte(_ value: Double) -> UInt8 { UInt8(max(0, min(255, value.rounded()))) }
        for row in 0..<height {
            for column in 0..<width {
                let (r, g, b) = rgb(row, column)
                y[row * yStride + column] = byte(0.299 * r + 0.587 * g + 0.114 * b)
            }
        }
        for row in 0..<((height + 1) / 2) {
            for column in 0..<((width + 1) / 2) {
                var (r, g, b) = (0.0, 0.0, 0.0)
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let p = rgb(2 * row + dy, 2 * column + dx)
                    (r, g, b) = (r + p.0 / 4, g + p.1 / 4, b + p.2 / 4)
                }
                cb[row * cbStride + column] = byte(128 - 0.168736 * r - 0.331264 * g + 0.5 * b)
                cr[row * crStride + column] = byte(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
            }
        }
    }
}

/// One frame through an image encoder: its only packet's bytes.
private func encodeStill(_ codec: AVCodecID, _ codecName: String, format: AVPixelFormat, width: Int, height: Int, name: String,
                         configure: (UnsafeMutablePointer<AVCodecContext>) -> Void = { _ in },
                         fill: (UnsafeMutablePointer<AVFrame>) -> Void) throws(MediaError) -> Data {
    func fail(_ call: String, _ message: String) -> MediaError { .encoderFailed(output: name, call: call, message: message) }
    guard width > 0, height > 0, width <= 32768, height <= 32768 else { throw fail("encode", "cannot encode a \(width)x\(height) picture") }
    guard let encoder = avcodec_find_encoder(codec) else { throw fail("avcodec_find_encoder", "this FFmpeg has no \(codecName) encoder") }
    var context = avcodec_alloc_context3(encoder)
    var frame = av_frame_alloc()
    var packet = av_packet_alloc()
    defer {
        avcodec_free_context(&context)
        av_frame_free(&frame)
        av_packet_free(&packet)
    }
    guard let context, let frame, let packet else { throw fail("av_frame_alloc", "out of memory") }
    context.pointee.width = Int32(width)
    context.pointee.height = Int32(height)
    context.pointee.pix_fmt = format
    context.pointee.time_base = AVRational(num: 1, den: 1)
    configure(context)
    var code = avcodec_open2(context, encoder, nil)
    guard code >= 0 else { throw fail("avcodec_open2", avErrorText(code)) }
    frame.pointee.format = format.rawValue
    frame.pointee.width = Int32(width)
    frame.pointee.height = Int32(height)
    // With a fixed quantizer (AV_CODEC_FLAG_QSCALE) the encoder reads it from each frame.
    frame.pointee.quality = context.pointee.global_quality
    code = av_frame_get_buffer(frame, 0)
    guard code >= 0 else { throw fail("av_frame_get_buffer", avErrorText(code)) }
    fill(frame)
    code = avcodec_send_frame(context, frame)
    guard code >= 0 else { throw fail("avcodec_send_frame", avErrorText(code)) }
    code = avcodec_receive_packet(context, packet)
    guard code >= 0, let bytes = packet.pointee.data else { throw fail("avcodec_receive_packet", avErrorText(code)) }
    return Data(bytes: bytes, count: Int(packet.pointee.size))
}
