import Foundation
import SegwatchService
import SegwatchTestSupport
import Testing

/// `serve`'s config: every table and key of the documented example, and each kind of mistake
/// reported with the file and line and the expected form.
struct ServiceConfigTests {
    static let example = Fixtures.packageRoot.appendingPathComponent("systemd/segwatch.toml").path
    static let secrets = ["FRONT_USER": "viewer", "FRONT_PASSWORD": "s3cret"]

    private let base = """
        [engine]
        sam = "s.pt"
        clip = "c"

        [[camera]]
        name = "a"
        input = "a.mp4"
        labels = ["car"]

        """

    /// The error `text` (as file "t.toml") gives.
    private func error(_ text: String, environment: [String: String] = [:]) -> ConfigError? {
        do {
            _ = try ServiceConfig.parse(text, file: "t.toml", environment: environment)
            return nil
        } catch {
            return error as? ConfigError
        }
    }

    @Test func theDocumentedExampleReadsEveryKey() throws {
        let config = try ServiceConfig.load(Self.example, environment: Self.secrets)
        #expect(config.engine.sam == "mobile_sam" && config.engine.clip == "clip_vit_b16" && config.engine.threads == 2)
        #expect(config.engine.clipSize == 448 && config.engine.background && config.engine.topK == 5 && config.engine.minCosine == -1)
        #expect(config.engine.generator.pointsPerSide == 32 && config.engine.generator.cropOverlapRatio == 0.3413)
        #expect(config.http.host == "127.0.0.1" && config.http.port == 8090 && config.http.isLoopback)
        #expect(config.store == StoreConfig(url: "/var/lib/segwatch/tracks.sqlite", retainDays: 30, maxBytes: 50 << 30))
        #expect(config.cameras.map(\.name) == ["front", "lab"])
        let front = config.cameras[0], lab = config.cameras[1]
        #expect(front.input.url == "rtsp://viewer:s3cret@192.0.2.10:554/stream1" && !front.input.redacted.contains("s3cret"))
        #expect(front.input.options["rtsp_transport"] == "tcp" && front.input.openTimeout == 10 && front.input.isLive)
        #expect(front.fps == 1 && front.labels == ["person", "bicycle", "car|automobile", "road"] && front.stuff == ["road"])
        #expect(front.analyzer.keyframeEvery == 10 && front.analyzer.discoveryGrid == 8 && front.analyzer.tracker.maxAge == 30)
        #expect(front.jsonOut == "/var/log/segwatch/front.jsonl" && front.jsonRotation.maximumBytes == 100 << 20)
        #expect(front.jsonRotation.maximumAge == 86400 && front.jsonRotation.keep == 7 && front.eventsSocket == "/run/segwatch/front.sock")
        #expect(!lab.enabled && lab.fps == 2 && lab.input.options["video_size"] == "640x480" && lab.input.options["input_format"] == "mjpeg")
        #expect(lab.videoOut == "/var/lib/segwatch/lab.mp4" && lab.videoSegmentMinutes == 10 && front.videoOut == nil)
    }

    @Test func unknownKeysAreNamedWithTheirLineAndASuggestion() throws {
        let e = try #require(error(base + "keyframe_evry = 3\n"))
        #expect(e.file == "t.toml" && e.line == 9)
        #expect(e.message.contains("camera[1].keyframe_evry") && e.message.contains("did you mean `keyframe_every`"))
        let top = try #require(error("[engine]\nsam = \"s\"\nclip = \"c\"\n[cameras]\nname = 1\n"))
        #expect(top.line == 4 && top.message.contains("cameras: unknown key (did you mean `camera`?); the file takes"), "\(top)")
        let generator = try #require(error("[engine]\nsam = \"s\"\nclip = \"c\"\n\n[engine.generator]\npoints_per_sid = 3\n"))
        #expect(generator.line == 6 && generator.message.contains("engine.generator.points_per_sid"), "\(generator)")
    }

    // `fps = true` was read as the next argument's value, `max-age = false` silently ignored:
    // with types, each is an error that says what was expected.
    @Test(arguments: [
        ("fps = true", "camera[1].fps: expected analyzed frames per second (0: every frame), a number in 0.0...1000.0, not the boolean true"),
        ("max_age = false", "camera[1].max_age: expected analyzed frames a track may go unseen, an integer in 1...100000, not the boolean false"),
        ("max_age = 2.5", "an integer"),
        ("labels = \"car\"", "expected an array of strings"),
        ("labels = [\"car\", 3]", "not the integer 3"),
        ("fps = -1", "-1.0 is out of range"),
        ("open_timeout = \"10\"", "not the string \"10\""),
        ("rtsp_transport = \"http\"", "expected \"tcp\" or \"udp\""),
        ("camera_size = \"640*480\"", "WIDTHxHEIGHT"),
        ("stuff = [\"sky\"]", "'sky' is not one of the camera's labels"),
    ])
    func wrongTypesAndValuesSayWhatWasExpected(line: String, expected: String) throws {
        // A labels line takes the place of the base's, on line 8.
        let replacing = line.hasPrefix("labels")
        let text = replacing ? base.replacingOccurrences(of: "labels = [\"car\"]", with: line) : base + line + "\n"
        let e = try #require(error(text))
        let number = replacing ? 8 : 9
        #expect(e.line == number && e.description.hasPrefix("t.toml:\(number): ") && e.message.contains(expected), "\(e)")
    }

    @Test func theEnginesBackendDeviceAndPrecision() throws {
        let engine = base.replacingOccurrences(of: "[engine]\n", with: "[engine]\nbackend = \"vulkan\"\ndevice = 1\nprecision = \"float16\"\n")
        let config = try ServiceConfig.parse(engine, file: "t.toml")
        #expect(config.engine.backend == .vulkan && config.engine.device == 1 && config.engine.precision == .float16)
        #expect(try ServiceConfig.parse(base, file: "t.toml").engine.precision == nil)
        let cpu = base.replacingOccurrences(of: "[engine]\n", with: "[engine]\nprecision = \"bfloat16\"\n")
        #expect(try ServiceConfig.parse(cpu, file: "t.toml").engine.precision == .bfloat16)
        let half = try #require(error(base.replacingOccurrences(of: "[engine]\n", with: "[engine]\nprecision = \"half\"\n")))
        #expect(half.message.contains("precision = \"half\": expected float32, float16 or bfloat16"), "\(half)")
    }

    @Test func structuralMistakes() throws {
        #expect(error("[engine]\nclip = \"c\"\n")?.message.contains("sam is missing") == true)
        #expect(error("[http]\nlisten = \"127.0.0.1:1\"\n")?.message.contains("no [engine] table") == true)
        let duplicate = try #require(error(base + "[[camera]]\nname = \"a\"\ninput = \"b.mp4\"\nlabels = [\"x\"]\n"))
        #expect(duplicate.line == 10 && duplicate.message.contains("already the name of camera[1]"), "\(duplicate)")
        let noWords = try #require(error("[engine]\nsam = \"s\"\nclip = \"c\"\n[[camera]]\nname = \"b\"\ninput = \"x\"\n"))
        #expect(noWords.line == 4 && noWords.message.contains("labels or vocab is missing"), "\(noWords)")
        let syntax = try #require(error("[engine]\nsam = \"s\"\nclip = \n"))
        #expect(syntax.line == 3 && syntax.message.hasPrefix("not TOML"), "\(syntax)")
        let badName = try #require(error(base.replacingOccurrences(of: "name = \"a\"", with: "name = \"front door\"")))
        #expect(badName.line == 6 && badName.message.contains("letters, digits"), "\(badName)")
        let open = try #require(error(base + "[http]\nlisten = \"0.0.0.0:8090\"\n"))
        #expect(open.line == 10 && open.message.contains("token_file"), "\(open)")
        #expect(error(base + "[http]\nlisten = \"0.0.0.0:8090\"\ntoken_file = \"/etc/t\"\n") == nil)
        #expect(error(base + "[http]\nlisten = \"localhost\"\n")?.message.contains("HOST:PORT") == true)
    }

    @Test func secretsComeFromTheEnvironmentOrCredentials() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let text = base.replacingOccurrences(of: "input = \"a.mp4\"", with: "input = \"rtsp://u:${CAM_PASSWORD}@h/s$$1\"")
        let fromEnvironment = try ServiceConfig.parse(text, file: "t.toml", environment: ["CAM_PASSWORD": "pw"])
        #expect(fromEnvironment.cameras[0].input.url == "rtsp://u:pw@h/s$1")
        try "from-file\n".write(toFile: folder.path("CAM_PASSWORD"), atomically: true, encoding: .utf8)
        let fromCredentials = try ServiceConfig.parse(text, file: "t.toml", environment: ["CREDENTIALS_DIRECTORY": folder.path("")])
        #expect(fromCredentials.cameras[0].input.url == "rtsp://u:from-file@h/s$1")
        let missing = try #require(error(text))
        #expect(missing.line == 7 && missing.message.contains("${CAM_PASSWORD} is not set") && missing.message.contains("LoadCredential"), "\(missing)")
        #expect(error(text.replacingOccurrences(of: "$$", with: "$"), environment: ["CAM_PASSWORD": "pw"])?.message.contains("`$$`") == true)
    }

    @Test func aMissingOrHugeFileIsNamed() throws {
        #expect { try ServiceConfig.load("/nonexistent/segwatch.toml") } throws: { "\($0)".hasPrefix("/nonexistent/segwatch.toml: cannot read") }
        #expect { try ServiceConfig.load("/tmp") } throws: { "\($0)".contains("expected a TOML file") }
    }

    @Test func theStoreTable() throws {
        #expect(try ServiceConfig.parse(base, file: "t.toml", environment: [:]).store == nil)
        let e = try #require(error(base + "[store]\nretain_days = 3\n"))
        #expect(e.message.contains("url is missing"), "\(e)")
        let size = try #require(error(base + "[store]\nurl = \"s.sqlite\"\nmax_size = \"lots\"\n"))
        #expect(size.message.contains("store.max_size") && size.message.contains("500M or 20G"), "\(size)")
        let fleet = try ServiceConfig.parse(base + "[store]\nurl = \"postgres://a:b@db/fleet\"\nframes = true\nframe_retain_days = 2\n",
                                            file: "t.toml", environment: [:]).store
        #expect(fleet == StoreConfig(url: "postgres://a:b@db/fleet", frames: true, frameRetainDays: 2))
        let frames = try #require(error(base + "[store]\nurl = \"s.sqlite\"\nframe_retain_days = 2\n"))
        #expect(frames.message.contains("frame_retain_days needs frames = true"), "\(frames)")
    }

    @Test func byteSizes() {
        #expect(parseByteSize("500M") == 500 << 20 && parseByteSize("20G") == 20 << 30 && parseByteSize("1.5T") == 3 << 39)
        #expect(parseByteSize("4096") == 4096 && parseByteSize("2GiB") == 2 << 30 && parseByteSize("10kb") == 10 << 10)
        #expect(["", "G", "-1G", "lots", "nanG", "1e30T"].allSatisfy { parseByteSize($0) == nil })
    }
}
