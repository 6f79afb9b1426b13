import Foundation

/// What to open and how: an FFmpeg URL with the demuxer and protocol options that go with it.
///
/// Accepted forms:
/// - a file path (`clip.mp4`, `/data/cam1.mkv`);
/// - `rtsp://[user:pass@]host[:port]/path`, read over TCP by default;
/// - `http://…`, `https://…`, and other FFmpeg protocols (`rtmp://`, `udp://`, `srt://`);
/// - a V4L2 camera: `/dev/videoN` (or `v4l2:/dev/videoN`), with `size`, `fps` and `pixelFormat`;
/// - an FFmpeg lavfi graph: `lavfi:testsrc=size=320x240:rate=25`.
public struct InputSpec: Sendable, Hashable {
    /// The input as the user wrote it.
    public let original: String
    /// The URL handed to `avformat_open_input`.
    public let url: String
    /// A forced demuxer (`v4l2`, `lavfi`), or nil to let FFmpeg probe.
    public let format: String?
    /// Demuxer and protocol options (`rtsp_transport`, `video_size`, …).
    public var options: [String: String]
    /// A live source keeps only the newest frames and reconnects; a file loses nothing.
    public var isLive: Bool
    /// Seconds allowed for opening the input and finding its streams.
    public var openTimeout: Double
    /// Seconds allowed for one read before the input counts as stalled.
    public var readTimeout: Double

    /// Camera settings for a V4L2 device.
    public struct CameraOptions: Sendable, Hashable {
        /// Capture size, `WIDTHxHEIGHT`.
        public var size: String?
        /// Capture frame rate.
        public var fps: Double?
        /// The device's pixel format, as FFmpeg names it (`yuyv422`, `mjpeg`).
        public var pixelFormat: String?

        public init(size: String? = nil, fps: Double? = nil, pixelFormat: String? = nil) {
            self.size = size
            self.fps = fps
            self.pixelFormat = pixelFormat
        }
    }

    /// Interprets `input`; `live` overrides the kind guessed from the scheme.
    public init(
        _ input: String,
        camera: CameraOptions = CameraOptions(),
        rtspTransport: String = "tcp",
        openTimeout: Double = 10,
        readTimeout: Double = 10,
        live: Bool? = nil
    ) {
        original = input
        self.openTimeout = openTimeout
        self.readTimeout = readTimeout
        var options: [String: String] = [:]
        let scheme = input.range(of: "://").map { input[..<$0.lowerBound].lowercased() }
        var guessedLive = false

        if input.hasPrefix("lavfi:") {
            url = String(input.dropFirst("lavfi:".count))
            format = "lavfi"
        } else if input.hasPrefix("v4l2:") || input.hasPrefix("/dev/video") {
            url = input.hasPrefix("v4l2:") ? String(input.dropFirst("v4l2:".count)) : input
            format = "v4l2"
            guessedLive = true
            if let size = camera.size { options["video_size"] = size }
            if let fps = camera.fps { options["framerate"] = String(fps) }
            if let pixelFormat = camera.pixelFormat { options["input_format"] = pixelFormat }
        } else if let scheme {
            url = input
            format = nil
            let microseconds = String(Int64(readTimeout * 1_000_000))
            switch scheme {
            case "rtsp", "rtsps":
                guessedLive = true
                options["rtsp_transport"] = rtspTransport
                options["timeout"] = microseconds
            case "http", "https":
                options["rw_timeout"] = microseconds
            case "rtmp", "rtmps", "udp", "srt", "tcp", "rtp":
                guessedLive = true
                options["rw_timeout"] = microseconds
            default:
                break
            }
        } else {
            // A plain path: the `file:` prefix stops FFmpeg reading "a:b.mp4" as protocol "a".
            url = "file:" + input
            format = nil
        }
        self.options = options
        isLive = live ?? guessedLive
    }

    /// The input for messages and logs: credentials in the URL replaced by `***`.
    public var redacted: String { redactCredentials(in: original) }
}
