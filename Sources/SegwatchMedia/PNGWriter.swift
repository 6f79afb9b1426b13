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
///
public func writePNG(_ picture: PNGPicture, width: Int, height: Int, to path: String) throws(MediaError) {
    func fail(_ call: String, _ message: String) -> MediaError { .encoderFailed(output: path, call: call, message: message) }
    guard width > 0, height > 0, width <= 32768, height <= 32768 else { throw fail("writePNG", "cannot write a \(width)x\(height) picture") }
    let pixels = picture.bytes
    guard pixels.count == width * height * picture.bytesPerPixel else {
        throw fail("writePNG", "\(pixels.count) bytes for a \(width)x\(height) picture of \(picture.bytesPerPixel) bytes per pixel")
    }
    guard let encoder = avcodec_find_encoder(AV_CODEC_ID_PNG) else { throw fail("avcodec_find_encoder", "this FFmpeg has no PNG encoder") }
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
    context.pointee.pix_fmt = picture.pixelFormat
    context.pointee.time_base = AVRational(num: 1, den: 1)
    var code = avcodec_open2(context, encoder, nil)
    guard code >= 0 else { throw fail("avcodec_open2", avErrorText(code)) }
    frame.pointee.format = picture.pixelFormat.rawValue
    frame.pointee.width = Int32(width)
    frame.pointee.height = Int32(height)
    code = av_frame_get_buffer(frame, 0)
    guard code >= 0 else { throw fail("av_frame_get_buffer", avErrorText(code)) }
    let rowBytes = width * picture.bytesPerPixel, stride = Int(frame.pointee.linesize.0)
    pixels.withUnsafeBufferPointer { source in
        for y in 0..<height {
            (frame.pointee.data.0! + y * stride).update(from: source.baseAddress! + y * rowBytes, count: rowBytes)
        }
    }
    code = avcodec_send_frame(context, frame)
    guard code >= 0 else { throw fail("avcodec_send_frame", avErrorText(code)) }
    code = avcodec_receive_packet(context, packet)
    guard code >= 0, let bytes = packet.pointee.data else { throw fail("avcodec_receive_packet", avErrorText(code)) }
    let data = Data(bytes: bytes, count: Int(packet.pointee.size))
    do {
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw fail("write", (error as NSError).localizedDescription)
    }
}
