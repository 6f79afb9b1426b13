import Foundation
import SegwatchMedia
import SegwatchTestSupport
import Testing

@Suite struct VideoEncoderTests {
    // Guards the encoder end to end: ffprobe must see every frame, the size, and the duration.
    @Test(arguments: ["mp4", "mkv"])
    func hundredFramesAreAllInTheFile(container: String) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("out.\(container)")
        let decoder = try VideoDecoder(InputSpec(Fixtures.media("bikes.mp4")))
        let encoder = try VideoEncoder(path: path, width: 640, height: 272, frameRate: 25)
        #expect(encoder.codecName == "libx264")
        for _ in 0..<100 {
            try encoder.append(try #require(try decoder.next()))
        }
        try encoder.finish()
        #expect(encoder.framesWritten == 100)
        let probed = try ffprobeVideo(path)
        #expect(probed.frames == 100 && probed.width == 640 && probed.height == 272)
        if container == "mp4" {
            // 100 frames at 25 fps from pts 0: 4 s.
            let duration = try #require(probed.duration)
            #expect(abs(duration - 4.0) < 0.05, "duration \(duration)")
        }
    }

    // Guards the fallback and timestamp keeping: mpeg4 when asked, with the source's pts.
    @Test func fallbackCodecKeepsSourceTimestamps() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("fallback.mkv")
        let decoder = try VideoDecoder(InputSpec(Fixtures.media("carphone.mp4")))
        let encoder = try VideoEncoder(path: path, width: 176, height: 144, frameRate: 30000.0 / 1001,
                                       settings: EncoderSettings(codecs: ["no-such-encoder", "mpeg4"]))
        #expect(encoder.codecName == "mpeg4")
        var sourcePTS: [Double] = []
        while let frame = try decoder.next() {
            sourcePTS.append(frame.pts ?? -1)
            try encoder.append(frame)
        }
        try encoder.finish()
        let result = try runProcess(which("ffprobe")!, ["-v", "error", "-select_streams", "v:0",
                                                        "-show_entries", "frame=pts_time", "-of", "csv=p=0", path])
        let written = result.output.split(separator: "\n").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        #expect(written.count == sourcePTS.count)
        for (a, b) in zip(written, sourcePTS) { #expect(abs(a - b) < 0.002, "pts \(a) vs source \(b)") }
    }

    @Test func unknownContainerIsAClearError() throws {
        #expect(throws: MediaError.self) {
            _ = try VideoEncoder(path: "/tmp/segwatch-out.notavideoformat", width: 64, height: 64, frameRate: 25)
        }
    }
}
