import ArgumentParser
import SegwatchMedia
import SegwatchService

/// How to open an input: shared by every command that reads video.
struct InputOptions: ParsableArguments {
    @Argument(help: "A file, rtsp:// or http(s):// URL, /dev/videoN, or lavfi:GRAPH.")
    var input: String

    @Option(help: "RTSP transport: tcp or udp.")
    var rtspTransport: String = "tcp"

    @Option(help: "Seconds allowed to open the input and read its stream info.")
    var openTimeout: Double = 10

    @Option(help: "Seconds a read may block before the input counts as stalled.")
    var readTimeout: Double = 10

    @Option(help: "Camera capture size, WIDTHxHEIGHT (V4L2 inputs).")
    var cameraSize: String?

    @Option(help: "Camera frame rate (V4L2 inputs).")
    var cameraFps: Double?

    @Option(help: "Camera pixel format as FFmpeg names it, e.g. yuyv422 or mjpeg (V4L2 inputs).")
    var cameraPixelFormat: String?

    @Flag(help: "Print FFmpeg's own error messages to stderr.")
    var ffmpegLog = false

    func validate() throws {
        guard ["tcp", "udp"].contains(rtspTransport) else {
            throw ValidationError("--rtsp-transport must be tcp or udp, not '\(rtspTransport)'")
        }
        guard openTimeout > 0, readTimeout > 0 else {
            throw ValidationError("timeouts must be positive seconds")
        }
        if let cameraSize, parseSize(cameraSize) == nil {
            throw ValidationError("--camera-size must be WIDTHxHEIGHT, e.g. 640x480, not '\(cameraSize)'")
        }
    }

    var spec: InputSpec {
        FFmpegLog.echo = ffmpegLog
        return InputSpec(
            input,
            camera: .init(size: cameraSize, fps: cameraFps, pixelFormat: cameraPixelFormat),
            rtspTransport: rtspTransport,
            openTimeout: openTimeout,
            readTimeout: readTimeout)
    }
}

/// Parses `WIDTHxHEIGHT` into positive integers.
func parseSize(_ text: String) -> (width: Int, height: Int)? {
    let parts = text.lowercased().split(separator: "x")
    guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), w > 0, h > 0 else { return nil }
    return (w, h)
}
