import ArgumentParser
import Foundation
import SegwatchService
import SegwatchStore

/// The store named on the command line, which must exist (a search never creates one).
func openExistingStore(_ location: String) throws -> any SegmentStore {
    if !location.contains("://") && !FileManager.default.fileExists(atPath: location) { throw CommandError("--store \(location): no such store") }
    return try openSegmentStore(location)
}

/// Which stored tracks a command works on: a camera's, and those seen in a time window.
struct TrackFilterOptions: ParsableArguments {
    @Option(help: "Only this camera's tracks (the events' `source`).")
    var camera: String?

    @Option(help: ArgumentHelp("Only tracks seen at or after this time: ISO 8601 (2026-12-06T10:15:00Z, 2026-12-06) or a time ago (30m, 24h, 7d).", valueName: "time"))
    var since: String?

    @Option(help: ArgumentHelp("Only tracks seen at or before this time (as --since).", valueName: "time"))
    var until: String?

    func validate() throws {
        for (name, value) in [("--since", since), ("--until", until)] {
            if let value, parseSearchTime(value, now: Date()) == nil {
                throw ValidationError("\(name) '\(value)' is not a time: give ISO 8601 (2026-12-06T10:15:00Z or 2026-12-06) or a time ago (30m, 24h, 7d)")
            }
        }
    }

    var filter: TrackFilter {
        let now = Date()
        return TrackFilter(camera: camera, since: since.flatMap { parseSearchTime($0, now: now) }.map(storeTime),
                           until: until.flatMap { parseSearchTime($0, now: now) }.map(storeTime))
    }
}
