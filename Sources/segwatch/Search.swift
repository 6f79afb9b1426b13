import SegwatchBackends
import ArgumentParser
import Foundation
import SegwatchCheckpoint
import SegwatchCLIP
import SegwatchService
import SegwatchStore
import SegwatchTensor

/// `segwatch search`: the stored tracks closest to a text, or to a picture.
struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find the stored tracks that look like a text ('a red bicycle') or a picture.",
        discussion: """
            The text is embedded exactly as a vocabulary label is (the CLIP model and prompt \
            templates of the runs that stored the tracks; synonyms after |), and the tracks are \
            ranked by the cosine between it and each track's embedding (the normalized mean of \
            its segments' embeddings). Each result gives the camera, the track, its time range \
            (ISO 8601, UTC), its voted label, the cosine, and its rank among every track the \
            filters let through, so that scores of different queries can be compared.

            --image PNG searches by example instead: the picture (or, with --box, the segment \
            SAM finds in that box of it, --sam) is embedded exactly as a run embeds a segment: \
            the runs' CLIP at --clip-size, through the runs' segment head (--head, with --dino \
            for the USE head; the runs' head digest is checked).

            --track ID --camera C prints that one track, with the embedding search ranks.
            """)

    @Argument(help: "What to look for.")
    var text: String?

    @Option(help: ArgumentHelp("The segment store written by 'segwatch run --store': a SQLite file or a postgres:// URL.", valueName: "store"))
    var store: String

    @OptionGroup(title: "Which tracks") var tracks: TrackFilterOptions

    @Option(help: "Only tracks with this label (voted in their run, or given by a relabeling).")
    var label: String?

    @Option(help: "Search by example: a picture (anything FFmpeg decodes) instead of a text.")
    var image: String?

    @Option(help: ArgumentHelp("With --image: the segment SAM finds for this box prompt of the picture, in pixels.", valueName: "X0,Y0,X1,Y1"))
    var box: String?

    @Option(help: "With --box: the SAM checkpoint that segments the box.", transform: ModelArgument.sam)
    var sam: String?

    @Option(help: "With --image: the segment head the runs used (their head digest is checked).")
    var head: String?

    @Option(help: "With --image and a USE head: the DINOv2 model it reads (folder or model name).", transform: ModelArgument.dino)
    var dino: String?

    @Option(help: "With --image: CLIP's short side in pixels, as the runs used it.")
    var clipSize = 448

    @Option(help: "With --image and a USE head: DINOv2's short side in pixels, as the runs used it.")
    var dinoSize = 448

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

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be in 1...100000, not \(limit)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, not \(threads)") }
        if track != nil {
            guard tracks.camera != nil else { throw ValidationError("--track needs --camera: track ids are per camera") }
            guard text == nil, image == nil else { throw ValidationError("give a text or --image to search, or --track, not both") }
        } else if image != nil {
            guard text == nil else { throw ValidationError("give a text or --image to search for, not both") }
        } else if (text ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("give a text to search for, --image PNG, or --track ID --camera C")
        }
        if image == nil, box != nil || sam != nil || head != nil || dino != nil {
            throw ValidationError("--box, --sam, --head and --dino embed an --image query")
        }
        if box != nil {
            guard sam != nil else { throw ValidationError("--box is segmented by SAM: give --sam") }
            guard boxPrompt != nil else { throw ValidationError("--box must be X0,Y0,X1,Y1 in pixels with X0 < X1 and Y0 < Y1, not '\(box!)'") }
        }
        guard (32...4096).contains(clipSize), (14...4096).contains(dinoSize) else {
            throw ValidationError("--clip-size and --dino-size must be picture sides in pixels")
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
            let backend = try backendOptions.open(threads: threads)
            let searcher = TrackSearcher(store: segmentStore, location: store, cache: VocabularyCache(directory: VocabularyCache.defaultDirectory),
                                         embedder: { try VocabularyEmbedder(clipPath: $0, backend: backend) })
            let (results, searched): ([(hit: TrackHit, track: StoredTrack)], Int)
            if let image {
                let space = try searcher.embeddingSpace(camera: filter.camera, clip: clip)
                try searcher.checkHead(try head.map { hexDigest(try fileDigest($0)) }, camera: filter.camera)
                let example = try ExampleEmbedder(clip: space.clip, head: head, dino: dino, sam: sam, backend: backend,
                                                  clipSize: clipSize, dinoSize: dinoSize, warn: { printError("warning: \($0)") })
                let query = try example.embed(try loadRGBImage(image, frame: 0), box: boxPrompt)
                guard query.count == space.dimension else {
                    throw CommandError("the picture's embedding has \(query.count) values and the tracks' \(space.dimension)")
                }
                (results, searched) = try searcher.search(query: query, filter: filter, limit: limit, threads: threads)
            } else {
                (results, searched) = try searcher.search(text!, filter: filter, limit: limit, clip: clip, threads: threads)
            }
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

    /// --box as SAM's box prompt.
    private var boxPrompt: (x0: Double, y0: Double, x1: Double, y1: Double)? {
        guard let box else { return nil }
        let v = box.split(separator: ",", omittingEmptySubsequences: false).compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard v.count == 4, v.allSatisfy(\.isFinite), v[0] < v[2], v[1] < v[3] else { return nil }
        return (v[0], v[1], v[2], v[3])
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
