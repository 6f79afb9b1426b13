import Foundation
import SegwatchMedia
import SegwatchTestSupport
import Testing

/// Every bad input ends in a clear `MediaError` that names it, within a bounded time.
@Suite struct BadInputTests {
    /// Runs `body` and returns its error, checking that it came within `seconds`.
    func failure(within seconds: Double, _ body: () throws -> Void) -> MediaError? {
        let start = Date()
        var caught: MediaError?
        do { try body() } catch let error as MediaError { caught = error } catch {
            Issue.record("not a MediaError: \(error)")
        }
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed < seconds, "took \(elapsed) s")
        return caught
    }

    func decodeAll(_ spec: InputSpec) throws -> Int {
        let decoder = try VideoDecoder(spec)
        var count = 0
        while try decoder.next() != nil { count += 1 }
        return count
    }

    // A picture whose header says 0x0: named as such, not an FFmpeg error about something else.
    @Test func aZeroSizedPicture() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in body {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            return withUnsafeBytes(of: UInt32(data.count).bigEndian, Array.init) + body + withUnsafeBytes(of: (~crc).bigEndian, Array.init)
        }
        let png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", [0, 0, 0, 0, 0, 0, 0, 0, 8, 2, 0, 0, 0])
            + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", [])
        let path = folder.path("zero.png")
        try Data(png).write(to: URL(fileURLWithPath: path))
        let error = failure(within: 10) { _ = try VideoDecoder(InputSpec(path)) }
        #expect(error.map { "\($0)".contains(path) && "\($0)".contains("0x0") && !"\($0)".contains("busy") } == true, "\(String(describing: error))")
    }

    @Test func missingFile() throws {
        let path = "/nonexistent/segwatch/missing.mp4"
        let error = try #require(failure(within: 5) { _ = try decodeAll(InputSpec(path)) })
        guard case .openFailed = error else { Issue.record("got \(error)"); return }
        #expect(error.description.contains(path) && error.description.contains("No such file"))
    }

    @Test func textFileNamedMP4() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("notes.mp4")
        try Data("these are not the frames you are looking for\n".utf8).write(to: URL(fileURLWithPath: path))
        let error = try #require(failure(within: 5) { _ = try decodeAll(InputSpec(path)) })
        guard case .openFailed = error else { Issue.record("got \(error)"); return }
        #expect(error.description.contains(path) && error.description.contains("not a media file"))
    }

    // The fixtures keep their index (moov) at the end, so their first 100 KB cannot be opened.
    @Test func truncatedFixtureWithoutItsIndex() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("truncated.mp4")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Fixtures.media("bikes.mp4"))).prefix(100_000)
        try bytes.write(to: URL(fileURLWithPath: path))
        let error = try #require(failure(within: 5) { _ = try decodeAll(InputSpec(path)) })
        #expect(error.description.contains(path) && error.description.contains("moov atom not found"))
    }

    // With the index first (and in Matroska), the first 100 KB hold decodable frames: they
    // come out, then the truncation is reported with the count.
    @Test(arguments: ["mp4", "mkv"])
    func truncatedFileDecodesWhatIsThereThenReports(container: String) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let whole = folder.path("whole.\(container)"), cut = folder.path("cut.\(container)")
        let remux = try runProcess(which("ffmpeg")!, ["-nostdin", "-v", "error", "-i", Fixtures.media("bikes.mp4"),
                                                       "-c", "copy", "-movflags", "+faststart", whole])
        #expect(remux.status == 0)
        try Data(contentsOf: URL(fileURLWithPath: whole)).prefix(100_000).write(to: URL(fileURLWithPath: cut))
        let reference = try ffprobeVideo(cut).frames
        let decoder = try VideoDecoder(InputSpec(cut))
        var count = 0
        let error = failure(within: 10) { while try decoder.next() != nil { count += 1 } }
        guard case let .truncated(input, decoded, _, _) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(input == cut && decoded == count)
        #expect(count > 10 && count < 250)
        #expect(abs(count - reference) <= 2, "ffprobe decodes \(reference), we \(count)")
    }

    @Test func audioOnlyFileHasNoVideoStream() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("tone.m4a")
        let made = try runProcess(which("ffmpeg")!, ["-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", path])
        #expect(made.status == 0)
        let error = try #require(failure(within: 5) { _ = try decodeAll(InputSpec(path)) })
        guard case let .noVideoStream(_, found) = error else { Issue.record("got \(error)"); return }
        #expect(found.contains("audio (aac)") && error.description.contains(path))
    }

    @Test func missingCameraDevice() throws {
        let error = try #require(failure(within: 5) { _ = try decodeAll(InputSpec("/dev/video97")) })
        guard case .openFailed = error else { Issue.record("got \(error)"); return }
        #expect(error.description.contains("/dev/video97"))
    }

    @Test func rtspPortNobodyListensOn() throws {
        let url = "rtsp://127.0.0.1:\(freePort())/stream"
        let error = try #require(failure(within: 5) { _ = try decodeAll(InputSpec(url, openTimeout: 3)) })
        #expect(error.description.contains(url) && error.description.contains("refused"))
    }

    @Test func rtspServerThatNeverSends() throws {
        let server = try RTSPServer(file: Fixtures.media("bikes.mp4"), port: freePort(), silent: true)
        defer { server.stop() }
        let error = try #require(failure(within: 8) { _ = try decodeAll(InputSpec(server.url, openTimeout: 3, readTimeout: 3)) })
        guard case .timedOut = error else { Issue.record("got \(error)"); return }
        #expect(error.description.contains(server.url))
    }

    @Test func credentialsNeverAppearInErrors() throws {
        let url = "rtsp://admin:s3cret@127.0.0.1:\(freePort())/cam"
        let error = try #require(failure(within: 5) { _ = try decodeAll(InputSpec(url, openTimeout: 3)) })
        #expect(!error.description.contains("s3cret") && !error.description.contains("admin"))
        #expect(error.description.contains("***@127.0.0.1"))
    }
}
