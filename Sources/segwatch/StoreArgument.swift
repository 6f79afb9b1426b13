import Foundation
import SegwatchStore

/// The store named on the command line, which must exist (a search never creates one).
func openExistingStore(_ location: String) throws -> any SegmentStore {
    if !location.contains("://") && !FileManager.default.fileExists(atPath: location) { throw CommandError("--store \(location): no such store") }
    return try openSegmentStore(location)
}
