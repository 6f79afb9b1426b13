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
