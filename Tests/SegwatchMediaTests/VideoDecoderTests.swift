import Foundation
import SegwatchMedia
import SegwatchTestSupport
import Testing

@Suite struct VideoDecoderTests {
    // Guards exact decoding: every frame of each fixture, at its true size, none lost or duplicated.
    @Test(arguments: [("bikes.mp4", 640, 272, 250), ("bigbuckbunny.mp4", 1280, 720, 132), ("carphone.mp4", 176, 144, 120)])
    func decodesEveryFrameAtItsSize(file: String, width: Int, height: Int, frames: Int) throws {
        let decoder = try VideoDecoder(InputSpec(Fixtures.media(file)))
        #expect(decoder.stream.width == width && decoder.stream.height == height)
        var count = 0
        var previous = -Double.infinity
        while let frame = try decoder.next() {
            #expect(frame.width == width && frame.height == height && frame.index == count)
            let pts = try #require(frame.pts)
            #expect(pts > previous, "timestamps must increase in display order")
            previous = pts
            count += 1
        }
        #expect(count == frames)
        #expect(try decoder.next() == nil, "the end stays the end")
    }

    // Guards http(s) inputs: a file served over HTTP decodes completely, as from disk.
    @Test func decodesEveryFrameOverHTTP() throws {
        let server = try HTTPFileServer(folder: Fixtures.root.appendingPathComponent("media").path)
        defer { server.stop() }
        let decoder = try VideoDecoder(InputSpec(server.url("carphone.mp4")))
        var count = 0
        while try decoder.next() != nil { count += 1 }
        #expect(count == 120)
        #expect(!decoder.spec.isLive)
    }

    // Guards the pixel path: our swscale conversion must match ffmpeg's CLI with the same flags.
    @Test(arguments: [
        (frame: 100, width: nil as Int?, height: nil as Int?, flags: "bicubic"),
        (frame: 37, width: 320, height: 136, flags: "bilinear"),
        (frame: 0, width: 224, height: 224, flags: "bicubic"),
    ])
    func convertedFrameMatchesFFmpegCLI(frame index: Int, width: Int?, height: Int?, flags: String) throws {
        let file = Fixtures.media("bikes.mp4")
        let scaler = ScalerKind(rawValue: flags)!
        let decoder = try VideoDecoder(InputSpec(file), options: DecodeOptions(width: width, height: height, scaler: scaler))
        var frame: VideoFrame?
        for _ in 0...index { frame = try decoder.next() }
        let ours = try #require(frame)

        var filter = "select=eq(n\\,\(index))"
        if let width, let height { filter += ",scale=\(width):\(height):flags=\(flags)" }
        let reference = try runProcess(which("ffmpeg")!, [
            "-nostdin", "-v", "error", "-i", file, "-vf", filter, "-sws_flags", flags,
            "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        #expect(reference.status == 0, "\(reference.errorOutput)")
        let expected = [UInt8](reference.stdout)
        let actual = ours.packedBytes()
        #expect(actual.count == expected.count)
        let worst = zip(actual, expected).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(worst <= 1, "max difference \(worst) per channel")
    }

    // Guards the planar float layout: R, G, B planes in [0, 1], as ffmpeg's CLI writes
    // gbrpf32le with the same flags (planes G, B, R there).
    @Test func planarFloatMatchesFFmpegCLI() throws {
        let file = Fixtures.media("carphone.mp4")
        let decoder = try VideoDecoder(InputSpec(file), options: DecodeOptions(width: 128, height: 96, layout: .rgbPlanarFloat))
        let planar = try #require(try decoder.next())
        let reference = try runProcess(which("ffmpeg")!, [
            "-nostdin", "-v", "error", "-i", file, "-vf", "scale=128:96:flags=bicubic", "-frames:v", "1",
            "-f", "rawvideo", "-pix_fmt", "gbrpf32le", "-"])
        let plane = 128 * 96
        let expected: [Float] = reference.stdout.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(expected.count == 3 * plane)
        guard expected.count == 3 * plane else { return }
        var worst: Float = 0
        planar.withFloatPlanes { floats in
            for (ours, theirs) in [(0, 2), (1, 0), (2, 1)] {  // R, G, B from G, B, R
                for i in 0..<plane {
                    worst = max(worst, abs(floats[ours * plane + i] - expected[theirs * plane + i]))
                }
            }
        }
        #expect(worst <= 1.0 / 255, "max difference \(worst * 255)/255")
    }

    // Guards buffer reuse: frames released by the consumer are recycled, kept ones are not overwritten.
    @Test func keptFramesAreNotOverwrittenByLaterOnes() throws {
        let decoder = try VideoDecoder(InputSpec(Fixtures.media("carphone.mp4")))
        let first = try #require(try decoder.next())
        let snapshot = first.packedBytes()
        for _ in 0..<30 { _ = try decoder.next() }
        #expect(first.packedBytes() == snapshot)
    }
}
