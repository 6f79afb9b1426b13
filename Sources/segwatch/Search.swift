import ArgumentParser
import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchService
import SegwatchStore
import SegwatchTensor

/// `segwatch search`: the stored tracks closest to a text.
struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find the stored tracks that look like a text ('a red bicycle').",
        discussion: """
            The text is embedded exactly as a vocabulary label is (the CLIP model and prompt \
            templates of the runs that stored the tracks; synonyms after |), and the tracks are \
            ranked by the cosine between it and each track's embedding (the normalized mean of \
            its segments' embeddings). Each result gives the camera, the track, its time range \
            (ISO 8601, UTC), its voted label, the cosine, and its rank among every track the \
            filters let through, so that scores of different queries can be compared.

            --track ID --camera C prints that one track, with the embedding search ranks.
            """)

    @Argument(help: "What to look for.")
    var text: String?

    @Option(help: ArgumentHelp("The segment store written by 'segwatch run --store': a SQLite file or a postgres:// URL.", valueName: "store"))
    var store: String

    @OptionGroup(title: "Which tracks") var tracks: TrackFilterOptions

    @Option(help: "Only tracks with this label (voted in their run, or given by a relabeling).")
    var label: String?

    @Option(help: "Results to print.")
    var limit = 10

    @Option(help: "Print this track of --camera (with its embedding) instead of searching.")
    var track: Int?

    @Option(help: "CLIP model to embed the text with (default: the one the runs recorded); it must be the runs' model.", transform: ModelArgument.clip)
    var clip: String?

    @Option(help: ArgumentHelp("Write the results' thumbnails here, as CAMERA-TRACK.jpg (default: the cache folder's thumbnails/).", valueName: "dir"))
    var thumbnails: String?

    @Flag(help: "Print a JSON array (one object with --track).")
    var json = false

    @Option(help: "Threads for inference.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be in 1...100000, not \(limit)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
        if track != nil {
            guard tracks.camera != nil else { throw ValidationError("--track needs --camera: track ids are per camera") }
            guard text == nil else { throw ValidationError("give a text to search or --track, not both") }
        } else if (text ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("give a text to search for, or --track ID --camera C")
        }
    }

    func run() throws {
        try runReporting {
            let segmentStore = try openExistingStore(store)
            if let track, let camera = tracks.camera {
                guard let stored = try segmentStore.track(camera: camera, track: track) else {
                    throw CommandError("\(store): no track \(track) of camera \(quoted(camera))")
                }
                var object = trackResultObject(stored, thumbnail: try thumbnailFile(stored))
                object["embedding"] = stored.row.embedding.map(Double.init)
                if json { print(try jsonText(object)) } else { print(Self.line(stored, score: nil)) }
                return
            }
            var filter = tracks.filter
            filter.label = label
            let backend = CPUBackend(engine: CPUEngine(threads: threads))
            let searcher = TrackSearcher(store: segmentStore, location: store, cache: VocabularyCache(directory: VocabularyCache.defaultDirectory),
                                         embedder: { try VocabularyEmbedder(clipPath: $0, backend: backend) })
            let (results, searched) = try searcher.search(text!, filter: filter, limit: limit, clip: clip, threads: threads)
            if json {
                print(try jsonText(try results.map { trackResultObject($1, score: $0.score, rank: $0.rank, thumbnail: try thumbnailFile($1)) }))
            } else {
                for (hit, track) in results {
                    print(Self.line(track, score: hit.score) + String(format: "  (#%d of %d)", hit.rank, searched)
                          + (try thumbnailFile(track).map { "  \($0)" } ?? ""))
                }
                if results.isEmpty { print("no tracks" + (searched == 0 ? " match the filters" : "")) }
            }
        }
    }

    /// Writes `track`'s thumbnail, if it has one, into the thumbnails folder; its path.
    private func thumbnailFile(_ track: StoredTrack) throws -> String? {
        guard let thumbnail = track.thumbnail else { return nil }
        let folder = URL(fileURLWithPath: thumbnails ?? VocabularyCache.defaultDirectory.appendingPathComponent("thumbnails").path)
        let camera = String(track.camera.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "_" })
        let file = folder.appendingPathComponent("\(camera)-\(track.row.track).\(thumbnail.format == "jpeg" ? "jpg" : thumbnail.format)")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try thumbnail.data.write(to: file, options: .atomic)
        } catch {
            throw CommandError("--thumbnails \(folder.path): cannot write \(file.lastPathComponent): \(error.localizedDescription)")
        }
        return file.path
    }

    static func line(_ track: StoredTrack, score: Double?) -> String {
        let start = isoTime(Date(timeIntervalSince1970: Double(track.row.start) / 1000))
        let end = isoTime(Date(timeIntervalSince1970: Double(track.row.end) / 1000))
        let relabeled = track.labelings.last.map { " (relabeled: \($0.label))" } ?? ""
        return (score.map { String(format: "%.4f  ", $0) } ?? "") + "\(track.camera)  track \(track.row.track)  \(start) - \(end)  \(track.row.label)"
            + relabeled
    }
}
