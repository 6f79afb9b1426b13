import Foundation
@testable import SegwatchService
import SegwatchTestSupport
import Testing

/// The JSON lines file of a daemon that restarts: appended, never truncated, a line cut by a
/// crash ended, rotated by size and by age with a bounded number of old files.
struct JSONLinesFileTests {
    private func line(_ text: String) -> [UInt8] { Array((text + "\n").utf8) }
    private func contents(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "<missing>" }

    @Test func aRestartAppendsAndEndsACutLine() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("e.jsonl")
        let first = try JSONLinesFile(path: path)
        try first.write(line(#"{"n":1}"#))
        try first.close()
        // A crash in the middle of a line.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"n":"#.utf8))
        try handle.close()
        let second = try JSONLinesFile(path: path)
        try second.write(line(#"{"n":2}"#))
        try second.close()
        #expect(contents(path) == "{\"n\":1}\n{\"n\":\n{\"n\":2}\n")
    }

    @Test func rotatesBySizeKeepingTheNewestFiles() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("e.jsonl")
        let file = try JSONLinesFile(path: path, rotation: .init(maximumBytes: 20, keep: 2))
        for n in 1...5 { try file.write(line(#"{"n":\#(n)}"#)) }  // 8 bytes each: two lines a file
        try file.close()
        #expect(contents(path) == "{\"n\":5}\n")
        #expect(contents(path + ".1") == "{\"n\":3}\n{\"n\":4}\n")
        #expect(contents(path + ".2") == "{\"n\":1}\n{\"n\":2}\n")
        #expect(!FileManager.default.fileExists(atPath: path + ".3"))
    }

    // The age counts from the file's first event, so a restart does not reset it.
    @Test func rotatesByAgeFromTheFirstEvent() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path("e.jsonl")
        let old = isoTime(Date().addingTimeInterval(-7200))
        try (#"{"time":"\#(old)"}"# + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let file = try JSONLinesFile(path: path, rotation: .init(maximumAge: 3600))
        try file.write(line(#"{"n":1}"#))
        try file.write(line(#"{"n":2}"#))
        try file.close()
        #expect(contents(path + ".1").contains(old))
        #expect(contents(path) == "{\"n\":1}\n{\"n\":2}\n")
    }

    @Test func anUnwritablePathIsNamed() throws {
        #expect { try JSONLinesFile(path: "/nonexistent/dir/e.jsonl") } throws: { "\($0)".contains("/nonexistent/dir/e.jsonl") }
    }

    @Test func isoTimesRoundTrip() {
        let date = Date(timeIntervalSince1970: 1_796_552_102.36)
        #expect(isoTime(date) == "2026-12-06T10:15:02.360Z")
        #expect(abs(parseISOTime("2026-12-06T10:15:02.360Z")!.timeIntervalSince(date)) < 0.001)
        #expect(parseISOTime("2026-12-06 10:15:02") == nil && parseISOTime("") == nil)
    }
}

/// The event log stamps every record and hands it to every sink.
struct EventLogTests {
    final class Collect: EventSink, @unchecked Sendable {
        var lines: [String] = []
        let fails: Bool
        init(fails: Bool = false) { self.fails = fails }
        func write(_ line: [UInt8]) throws {
            lines.append(String(decoding: line, as: UTF8.self))
            if fails { throw ServiceError("full") }
        }
        func close() throws {}
    }

    @Test func everyRecordGetsTheTimeAndAUniqueID() throws {
        let failing = Collect(fails: true), working = Collect()
        let clock = Date(timeIntervalSince1970: 1_796_552_102.36)
        let log = EventLog(sinks: [failing, working], clock: { clock })
        for n in 0..<3 {
            #expect(throws: ServiceError.self) {
                try log.write(SourceRecord(.connecting(attempt: n), source: "cam1"))
            }
        }
        // The failing sink did not starve the other one.
        #expect(working.lines.count == 3 && failing.lines.count == 3)
        let records = try working.lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(records.allSatisfy { $0["time"] as? String == "2026-12-06T10:15:02.360Z" && $0["source"] as? String == "cam1" })
        let ids = records.map { $0["event_id"] as! String }
        #expect(Set(ids).count == 3)
        // Another log (another camera, or a restart) never makes the same ids.
        let other = Collect()
        try EventLog(sinks: [other]).write(SourceRecord(.connected, source: "cam1"))
        let otherRecord = try JSONSerialization.jsonObject(with: Data(other.lines[0].utf8)) as! [String: Any]
        #expect(!ids.contains(otherRecord["event_id"] as! String))
    }
}
