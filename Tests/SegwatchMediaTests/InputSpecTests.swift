import SegwatchMedia
import Testing

@Suite struct InputSpecTests {
    @Test func fileRTSPCameraAndLavfiAreRecognised() {
        let file = InputSpec("dir/a:b.mp4")
        #expect(file.url == "file:dir/a:b.mp4" && !file.isLive && file.format == nil)

        let rtsp = InputSpec("rtsp://cam.local/live", readTimeout: 4)
        #expect(rtsp.isLive && rtsp.options["rtsp_transport"] == "tcp" && rtsp.options["timeout"] == "4000000")

        let camera = InputSpec("/dev/video0", camera: .init(size: "640x480", fps: 15, pixelFormat: "mjpeg"))
        #expect(camera.format == "v4l2" && camera.isLive)
        #expect(camera.options == ["video_size": "640x480", "framerate": "15.0", "input_format": "mjpeg"])

        let lavfi = InputSpec("lavfi:testsrc=rate=5")
        #expect(lavfi.format == "lavfi" && lavfi.url == "testsrc=rate=5" && !lavfi.isLive)

        let http = InputSpec("https://example.invalid/v.mp4")
        #expect(!http.isLive && http.options["rw_timeout"] != nil)
    }

    @Test func credentialsAreRedacted() {
        #expect(InputSpec("rtsp://user:pa:ss@10.0.0.2:554/s").redacted == "rtsp://***@10.0.0.2:554/s")
        #expect(InputSpec("rtsp://10.0.0.2/s?a=b@c").redacted == "rtsp://10.0.0.2/s?a=b@c")
        #expect(InputSpec("/data/a@b.mp4").redacted == "/data/a@b.mp4")
    }

    @Test func backoffDoublesUpToItsCap() {
        let backoff = Backoff(initial: 0.5, multiplier: 2, maximum: 4)
        #expect((1...6).map { backoff.delay(attempt: $0) } == [0.5, 1, 2, 4, 4, 4])
        #expect(backoff.delay(attempt: 1_000_000) == 4)
    }
}
