import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchService
import SegwatchStore

/// The runs of a store that a command works on (one camera, or all), and the CLIP model and
/// prompt templates their tracks were embedded with: a text must be embedded by the same model
/// and templates to be compared with them.
struct StoredRuns {
    var runs: [StoredRun]
    /// The CLIP model to load (the one given, or the one the runs recorded) and its digest.
    var clip: String
    var clipDigest: UInt64
    var templates: PromptTemplates

    init(_ store: any SegmentStore, location: String, camera: String?, clip given: String?, cache: VocabularyCache?) throws {
        runs = try store.runs().filter { camera == nil || $0.record.camera == camera }
        guard let first = runs.first else {
            throw CommandError("\(location): no runs stored" + (camera.map { " for camera \(quoted($0))" } ?? ""))
        }
        for run in runs where run.record.clipDigest != first.record.clipDigest || run.record.templates != first.record.templates {
            throw CommandError("\(location): its runs embedded their tracks with different CLIP models or templates (\(first.record.clip), "
                               + "\(run.record.clip)); work on one camera at a time (--camera)")
        }
        clip = given ?? first.record.clip
        clipDigest = try CLIPFiles.digest(clip, memo: cache?.digestMemo)
        guard hexDigest(clipDigest) == first.record.clipDigest else {
            throw CommandError("--clip \(clip) is not the CLIP model the tracks were embedded with (\(first.record.clip), digest \(first.record.clipDigest))")
        }
        templates = try PromptTemplates(first.record.templates)
    }

    var dimension: Int { runs[0].record.dimension }
}

/// The store named on the command line, which must exist (a search never creates one).
func openExistingStore(_ location: String) throws -> any SegmentStore {
    if !location.contains("://") && !FileManager.default.fileExists(atPath: location) { throw CommandError("--store \(location): no such store") }
    return try openSegmentStore(location)
}
