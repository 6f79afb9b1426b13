// `segwatch serve`'s configuration: one TOML file with an [engine] table (the models and the
// core budget every camera shares), an [http] table, and one [[camera]] table per camera.
// `systemd/segwatch.toml` documents every key. Each key has a default, a bound and a type;
// a wrong type, a value out of bounds or an unknown key is an error with the file and line.
import Foundation
import SegwatchBackends
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchMedia
import SegwatchPipeline
import SegwatchSAM
internal import TOMLKit

public struct ServiceConfig: Sendable {
    public var file: String
    public var engine: EngineConfig
    public var http: HTTPConfig
    /// The segment store every camera writes to, if any.
    public var store: StoreConfig?
    public var cameras: [CameraConfig]

    /// The largest config file read: a config is a few kilobytes.
    public static let maximumBytes = 4 << 20

    /// Reads and checks `path`. `environment` supplies `${NAME}` secrets (and
    /// `CREDENTIALS_DIRECTORY`, systemd's credentials).
    public static func load(_ path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServiceConfig {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ConfigError(file: path, line: nil, message: "cannot read the config file: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG, Int(info.st_size) <= maximumBytes else {
            throw ConfigError(file: path, line: nil, message: "expected a TOML file of at most \(maximumBytes >> 20) MB")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: nil, message: "cannot read the config file as UTF-8 text")
        }
        return try parse(text, file: path, environment: environment)
    }

    /// Checks `text` as the contents of `file`.
    public static func parse(_ text: String, file: String, environment: [String: String] = [:]) throws -> ServiceConfig {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(file: file, line: Int(error.source.begin.line), message: "not TOML: \(error.description)")
        }
        let source = ConfigSource(file: file, lines: KeyLines(text), environment: environment)
        let root = TableReader(table, path: "", source: source)
        guard let engineTable = try root.table("engine") else {
            throw ConfigError(file: file, line: nil, message: "no [engine] table: it names the models (sam, clip) every camera shares")
        }
        let engine = try EngineConfig(TableReader(engineTable.table, path: "engine", source: source))
        let http = try root.table("http").map(HTTPConfig.init) ?? HTTPConfig()
        let store = try root.table("store").map(StoreConfig.init)
        var cameras: [CameraConfig] = []
        if root.has("camera") {
            guard let array = table["camera"]?.array else {
                throw ConfigError(file: file, line: source.lines.line(of: "camera", in: ""), message: "camera: expected [[camera]] tables, one per camera")
            }
            for (index, item) in array.enumerated() {
                let path = "camera[\(index + 1)]"
                guard let cameraTable = item.table else {
                    throw ConfigError(file: file, line: source.lines.line(of: "camera", in: ""), message: "\(path): expected a table")
                }
                let camera = try CameraConfig(TableReader(cameraTable, path: path, source: source))
                if let first = cameras.first(where: { $0.name == camera.name }) {
                    throw ConfigError(file: file, line: source.lines.line(of: "name", in: path),
                                      message: "\(path).name: '\(camera.name)' is already the name of camera[\(first.index)]; each camera needs its own name")
                }
                cameras.append(camera)
            }
        }
        root.markRead("camera")
        try root.finish(known: ["engine", "http", "store", "camera"])
        return ServiceConfig(file: file, engine: engine, http: http, store: store, cameras: cameras)
    }
}

/// `[engine]`: the models every camera shares, loaded once, and the core budget.
public struct EngineConfig: Sendable {
    /// A SAM checkpoint path or catalog name (`segwatch models list`).
    public var sam: String
    /// A CLIP folder or file, or a catalog name.
    public var clip: String
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Where the models run (nil: `$SEGWATCH_BACKEND`, else the CPU).
    public var backend: BackendChoice?
    /// The Vulkan device (nil: the first usable one).
    public var device: Int?
    /// The models' precision: float16 linear weights on a device, bfloat16 products on a CPU (nil:
    /// `$SEGWATCH_PRECISION`, else float32).
    public var precision: Precision?
    public var clipSize = 448
    public var head: String?
    /// The DINOv2 folder a USE head reads.
    public var dino: String?
    /// The short side, in pixels, of the picture DINOv2 sees.
    public var dinoSize = 448
    public var background = true
    public var topK = 5
    public var minScore: Float = 0
    public var minCosine: Float = -1
    /// The vocabulary cache (nil: `$SEGWATCH_CACHE`, `$CACHE_DIRECTORY`, ...).
    public var cacheDirectory: String?
    /// Track counters and other state (nil: `$SEGWATCH_STATE_DIR`, `$STATE_DIRECTORY`, ...).
    public var stateDirectory: String?
    public var generator = MaskGeneratorOptions()

    static let keys = ["sam", "clip", "threads", "backend", "device", "precision", "clip_size", "head", "dino", "dino_size", "background", "top_k", "min_score", "min_cosine",
                       "cache_dir", "state_dir", "generator"]

    init(_ t: TableReader) throws {
        guard let sam = try t.string("sam", "a SAM checkpoint path or model name") else {
            throw t.error(nil, "sam is missing: a SAM checkpoint (sam_vit_b .pth, mobile_sam.pt) or a model name such as mobile_sam")
        }
        guard let clip = try t.string("clip", "a CLIP folder or file, or a model name") else {
            throw t.error(nil, "clip is missing: a CLIP folder (transformers or open_clip), OpenAI's .pt, or a model name such as clip_vit_b16")
        }
        (self.sam, self.clip) = (sam, clip)
        threads = try t.int("threads", in: 1...256, "the cores inference may use") ?? threads
        if let name = try t.string("backend", "cpu, vulkan or auto", secrets: false) {
            guard let choice = BackendChoice(rawValue: name) else { throw t.error("backend", "backend = \"\(name)\": expected cpu, vulkan or auto") }
            backend = choice
        }
        device = try t.int("device", in: 0...255, "a Vulkan device number (segwatch devices)")
        if let name = try t.string("precision", "float32, float16 or bfloat16", secrets: false) {
            guard let value = Precision(rawValue: name) else {
                throw t.error("precision", "precision = \"\(name)\": expected float32, float16 or bfloat16")
            }
            precision = value
        }
        clipSize = try t.int("clip_size", in: 16...4096, "the short side, in pixels, of CLIP's dense features") ?? clipSize
        head = try t.string("head", "a learned segment head (.safetensors)")
        dino = try t.string("dino", "a DINOv2 folder (transformers layout) or model name")
        dinoSize = try t.int("dino_size", in: 14...4096, "the short side, in pixels, of the picture DINOv2 sees") ?? dinoSize
        background = try t.bool("background") ?? background
        topK = try t.int("top_k", in: 1...1000, "labels listed per segment") ?? topK
        minScore = Float(try t.double("min_score", in: 0...1, "the probability below which a segment is unknown") ?? Double(minScore))
        minCosine = Float(try t.double("min_cosine", in: -1...1, "the cosine below which a segment is unknown") ?? Double(minCosine))
        cacheDirectory = try t.string("cache_dir", "a folder")
        stateDirectory = try t.string("state_dir", "a folder")
        if let g = try t.table("generator") {
            var o = MaskGeneratorOptions()
            o.pointsPerSide = try g.int("points_per_side", in: 1...1024, "points per side of the keyframes' grid") ?? o.pointsPerSide
            o.pointsPerBatch = try g.int("points_per_batch", in: 1...4096, "points per decoder batch") ?? o.pointsPerBatch
            o.predIouThresh = try g.double("pred_iou_thresh", in: 0...1, "the predicted IoU a mask must pass") ?? o.predIouThresh
            o.stabilityScoreThresh = try g.double("stability_score_thresh", in: 0...1, "the stability a mask must reach") ?? o.stabilityScoreThresh
            o.stabilityScoreOffset = try g.double("stability_score_offset", in: 0...100, "the stability logit offset") ?? o.stabilityScoreOffset
            o.boxNmsThresh = try g.double("box_nms_thresh", in: 0...1, "the box IoU of NMS within a crop") ?? o.boxNmsThresh
            o.cropNLayers = try g.int("crop_n_layers", in: 0...4, "layers of crops") ?? o.cropNLayers
            o.cropNmsThresh = try g.double("crop_nms_thresh", in: 0...1, "the box IoU of NMS across crops") ?? o.cropNmsThresh
            o.cropOverlapRatio = try g.double("crop_overlap_ratio", in: 0...1, "the overlap of neighbouring crops") ?? o.cropOverlapRatio
            o.cropNPointsDownscaleFactor = try g.int("crop_n_points_downscale_factor", in: 1...64, "the points' shrink per crop layer") ?? o.cropNPointsDownscaleFactor
            o.minMaskRegionArea = try g.int("min_mask_region_area", in: 0...1 << 30, "pixels below which holes and islands go") ?? o.minMaskRegionArea
            try g.finish(known: ["points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh", "stability_score_offset",
                                 "box_nms_thresh", "crop_n_layers", "crop_nms_thresh", "crop_overlap_ratio", "crop_n_points_downscale_factor",
                                 "min_mask_region_area"])
            do { try o.validate() } catch { throw g.error(nil, "\(error)") }
            generator = o
        }
        try t.finish(known: Self.keys)
    }
}

extension EngineConfig {
    /// The vocabulary cache of `cache_dir` (default: the user's cache folder).
    public var vocabularyCache: VocabularyCache {
        VocabularyCache(directory: cacheDirectory.map { URL(fileURLWithPath: $0) } ?? VocabularyCache.defaultDirectory)
    }
}

/// `[store]`: the segment store (`url`: a SQLite file's path, or a fleet's postgres:// URL) and
/// its retention.
public struct StoreConfig: Sendable, Equatable {
    public var url: String
    public var retainDays: Double?
    public var maxBytes: Int64?
    /// Each analyzed frame's event kept too, for `frameRetainDays`.
    public var frames = false
    public var frameRetainDays: Double?

    public init(url: String, retainDays: Double? = nil, maxBytes: Int64? = nil, frames: Bool = false, frameRetainDays: Double? = nil) {
        (self.url, self.retainDays, self.maxBytes, self.frames, self.frameRetainDays) = (url, retainDays, maxBytes, frames, frameRetainDays)
    }

    init(_ t: TableReader) throws {
        guard let url = try t.string("url", "the segment store: a SQLite file's path or a postgres:// URL") else {
            throw t.error(nil, "url is missing: the segment store, a SQLite file's path such as /var/lib/segwatch/tracks.sqlite or postgres://USER:PASSWORD@HOST/DATABASE")
        }
        self.url = url
        retainDays = try t.double("retain_days", in: 0.000_001...1_000_000, "days a track is kept after it was last seen")
        if let size = try t.string("max_size", "a size such as 500M or 20G") {
            guard let bytes = parseByteSize(size) else { throw t.error("max_size", "expected a size such as 500M or 20G, not \(size.debugDescription)") }
            maxBytes = bytes
        }
        frames = try t.bool("frames") ?? false
        frameRetainDays = try t.double("frame_retain_days", in: 0.000_001...1_000_000, "days a frame event is kept")
        if frameRetainDays != nil, !frames { throw t.error("frame_retain_days", "frame_retain_days needs frames = true") }
        try t.finish(known: ["url", "retain_days", "max_size", "frames", "frame_retain_days"])
    }
}

/// A size in bytes: a number with an optional K, M, G or T (powers of 1024; a trailing B or iB
/// is allowed): `500M`, `20G`, `1.5T`.
public func parseByteSize(_ text: String) -> Int64? {
    var digits = text.trimmingCharacters(in: .whitespaces).uppercased()
    for suffix in ["IB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count { digits.removeLast(suffix.count); break }
    let units: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
    var scale = 1.0
    if let last = digits.last, let unit = units[last] { scale = unit; digits.removeLast() }
    guard let value = Double(digits), value > 0, value.isFinite, value * scale < 9e18 else { return nil }
    return Int64(value * scale)
}

/// `[http]`: the API (health, readiness, metrics, events), on loopback unless told otherwise.
public struct HTTPConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 8090
    /// A file holding the bearer token; required for any address but loopback.
    public var tokenFile: String?

    public init() {}

    public var listen: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether `host` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
    public var isLoopback: Bool { host == "localhost" || host == "::1" || host.hasPrefix("127.") }

    init(_ t: TableReader) throws {
        if let listen = try t.string("listen", "HOST:PORT, e.g. 127.0.0.1:8090") {
            guard let parsed = Self.parseListen(listen) else { throw t.error("listen", "expected HOST:PORT (a port in 1...65535), e.g. 127.0.0.1:8090, not \(listen.debugDescription)") }
            (host, port) = parsed
        }
        tokenFile = try t.string("token_file", "a file holding the bearer token")
        try t.finish(known: ["listen", "token_file"])
        if !isLoopback, tokenFile == nil {
            throw t.error("listen", "\(listen) is not a loopback address: give token_file, a file holding the bearer token clients must send")
        }
    }

    /// `HOST:PORT` or `[IPv6]:PORT`.
    public static func parseListen(_ text: String) -> (host: String, port: Int)? {
        var host: Substring, port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].first == ":" else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            (host, port) = (text[..<colon], text[text.index(after: colon)...])
        }
        guard !host.isEmpty, let number = Int(port), (1...65535).contains(number) else { return nil }
        return (String(host), number)
    }
}

/// `[[camera]]`: one stream, its input, its analysis and its outputs.
public struct CameraConfig: Sendable {
    /// Its place in the file, from 1.
    public var index: Int
    public var name: String
    /// The input with its options; secrets already substituted (never printed: `input.redacted`).
    public var input: InputSpec
    public var fps = 1.0
    public var labels: [String] = []
    public var vocab: String?
    public var templates: [String]?
    public var stuff: [String] = []
    public var analyzer = AnalyzerOptions()
    public var jsonOut: String?
    public var jsonRotation = JSONLinesFile.Rotation()
    public var eventsSocket: String?
    public var socketGroup: String?
    /// The annotated video, in segments of `videoSegmentMinutes` (10 by default), each named by
    /// the wall clock when it started.
    public var videoOut: String?
    public var videoSegmentMinutes = 10.0
    public var font: String?
    public var enabled = true

    /// A camera's keyframe grid is spread over this many analyzed frames unless it says
    /// otherwise: one 64-point batch of the 32x32 grid each, so that no event waits for a whole
    /// keyframe (about 20 s on two cores).
    static let keyframeSlices = 16

    static let keys = ["name", "input", "rtsp_transport", "open_timeout", "read_timeout", "camera_size", "camera_fps",
                       "camera_pixel_format", "fps", "labels", "vocab", "templates", "stuff", "keyframe_every", "discovery_grid",
                       "max_age", "tracked_min_iou", "keyframe_below_iou", "keyframe_below_coverage", "duplicate_iou",
                       "max_segments", "embed_every_frame", "keyframe_slices", "keyframe_track_prompts", "json_out", "json_rotate_mb", "json_rotate_hours",
                       "json_keep", "events_socket", "socket_group", "video_out", "video_segment_minutes", "font", "enabled"]

    init(_ t: TableReader) throws {
        index = Int(t.path.drop { $0 != "[" }.dropFirst().prefix { $0 != "]" }) ?? 0
        guard let name = try t.string("name", "the camera's name", secrets: false) else {
            throw t.error(nil, "name is missing: each camera has a name, the `source` of its events")
        }
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw t.error("name", "expected 1 to 64 letters, digits, '-', '_' or '.', not \(name.debugDescription)")
        }
        self.name = name
        guard let url = try t.string("input", "a file, rtsp:// or http(s):// URL, /dev/videoN, or lavfi:GRAPH") else {
            throw t.error(nil, "input is missing: a file, rtsp:// or http(s):// URL, /dev/videoN, or lavfi:GRAPH")
        }
        let transport = try t.string("rtsp_transport", "tcp or udp") ?? "tcp"
        guard ["tcp", "udp"].contains(transport) else { throw t.error("rtsp_transport", "expected \"tcp\" or \"udp\", not \(transport.debugDescription)") }
        let openTimeout = try t.double("open_timeout", in: 0.1...3600, "seconds to open the input") ?? 10
        let readTimeout = try t.double("read_timeout", in: 0.1...3600, "seconds a read may block") ?? 10
        let size = try t.string("camera_size", "WIDTHxHEIGHT, e.g. 640x480")
        if let size {
            let parts = size.lowercased().split(separator: "x")
            guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), w > 0, h > 0 else {
                throw t.error("camera_size", "expected WIDTHxHEIGHT, e.g. 640x480, not \(size.debugDescription)")
            }
        }
        let cameraFps = try t.double("camera_fps", in: 0.1...1000, "the camera's frame rate")
        let pixelFormat = try t.string("camera_pixel_format", "a pixel format as FFmpeg names it, e.g. mjpeg")
        input = InputSpec(url, camera: .init(size: size, fps: cameraFps, pixelFormat: pixelFormat), rtspTransport: transport,
                          openTimeout: openTimeout, readTimeout: readTimeout)
        fps = try t.double("fps", in: 0...1000, "analyzed frames per second (0: every frame)") ?? fps
        labels = try t.strings("labels", "the labels, synonyms after |") ?? []
        vocab = try t.string("vocab", "a vocabulary file")
        guard !labels.isEmpty || vocab != nil else {
            throw t.error(nil, "labels or vocab is missing: the words segments are labeled with (labels = [\"person\", \"car\"], or vocab = \"/etc/segwatch/words.txt\")")
        }
        templates = try t.strings("templates", "prompt templates with {} where the label goes")
        if let templates, let bad = templates.first(where: { !$0.contains("{}") }) {
            throw t.error("templates", "the template \(bad.debugDescription) has no {} where the label goes")
        }
        stuff = try t.strings("stuff", "background labels reported by area") ?? []
        if vocab == nil, let unknown = stuff.first(where: { s in !labels.contains { $0.split(separator: "|").first.map(String.init) == s } }) {
            throw t.error("stuff", "\(quoted(unknown)) is not one of the camera's labels")
        }
        analyzer.keyframeEvery = try t.int("keyframe_every", in: 1...100_000, "analyzed frames between keyframes") ?? analyzer.keyframeEvery
        analyzer.discoveryGrid = try t.int("discovery_grid", in: 0...64, "points per side of the grid for new objects") ?? analyzer.discoveryGrid
        analyzer.tracker.maxAge = try t.int("max_age", in: 1...100_000, "analyzed frames a track may go unseen") ?? analyzer.tracker.maxAge
        analyzer.trackedMinimumIoU = try t.double("tracked_min_iou", in: 0...1, "the predicted IoU a re-prompted mask must reach") ?? analyzer.trackedMinimumIoU
        analyzer.keyframeBelowIoU = try t.double("keyframe_below_iou", in: 0...1, "the mean predicted IoU below which a keyframe comes early") ?? analyzer.keyframeBelowIoU
        analyzer.keyframeBelowCoverage = try t.double("keyframe_below_coverage", in: 0...1,
                                                      "the share of the last keyframe's coverage below which a keyframe comes early")
            ?? analyzer.keyframeBelowCoverage
        analyzer.duplicateIoU = try t.double("duplicate_iou", in: 0...1, "the IoU at which two tracks' masks are one object") ?? analyzer.duplicateIoU
        analyzer.maximumSegments = try t.int("max_segments", in: 1...10_000, "segments per frame at most") ?? analyzer.maximumSegments
        analyzer.embedEveryFrame = try t.bool("embed_every_frame") ?? analyzer.embedEveryFrame
        analyzer.keyframeSlices = try t.int("keyframe_slices", in: 1...1024, "analyzed frames a keyframe's grid is decoded over")
            ?? Self.keyframeSlices
        analyzer.keyframeTrackPrompts = try t.bool("keyframe_track_prompts") ?? analyzer.keyframeTrackPrompts
        jsonOut = try t.string("json_out", "a JSON lines file, appended to")
        if let megabytes = try t.double("json_rotate_mb", in: 0.001...1_000_000, "megabytes at which the JSON lines file rotates") {
            jsonRotation.maximumBytes = Int(megabytes * 1_048_576)
        }
        if let hours = try t.double("json_rotate_hours", in: 0.001...100_000, "hours after which the JSON lines file rotates") {
            jsonRotation.maximumAge = hours * 3600
        }
        jsonRotation.keep = try t.int("json_keep", in: 1...10_000, "rotated JSON lines files kept") ?? jsonRotation.keep
        eventsSocket = try t.string("events_socket", "a Unix socket path")
        socketGroup = try t.string("socket_group", "the group that may read the events socket")
        videoOut = try t.string("video_out", "an MP4 path; written in segments named by their start time")
        videoSegmentMinutes = try t.double("video_segment_minutes", in: 0.05...1440, "minutes of video per file") ?? videoSegmentMinutes
        font = try t.string("font", "a TrueType or OpenType font for the video's labels")
        enabled = try t.bool("enabled") ?? enabled
        try t.finish(known: Self.keys)
    }
}
