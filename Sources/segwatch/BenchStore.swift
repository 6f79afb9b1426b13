import ArgumentParser
import Foundation
import SegwatchService

/// `segwatch bench store`: the segment store's ingestion and search, with synthetic tracks.
struct BenchStore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Time the segment store: ingestion, and search over 100,000 and 1,000,000 tracks.",
        discussion: """
            Ingestion: --frames analyzed frames of --segments tracked segments each (tracks live \
            ten frames; each a random unit embedding of --dimension values, a box and, when its \
            best observation improves, a 6 KB thumbnail), each frame one transaction through the \
            same path as a run: ingest_tracks_per_s, ingest_observations_per_s.

            Search: random unit embeddings of --dimension values (CLIP ViT-B's 512) stored as \
            tracks; --queries random unit queries, each ranked over every track as `segwatch \
            search` ranks (the int8 first pass, here held in memory as a server holds it, then the \
            exact cosines of the best candidates read from the store): search_p50_ms_N and \
            search_p95_ms_N for N = 100000 and 1000000, recall_at_10_1000000 (the first pass's \
            top 10 against an exact float32 scan), store_bytes_per_million_tracks. The peer, in \
            the same run: the same search as a brute-force numpy matrix product and top-k over the \
            same embeddings (numpy_search_p50_ms_N, numpy_search_p95_ms_N), with --threads threads.

            With --postgres URL, the same ingestion into that PostgreSQL store too \
            (postgres_ingest_tracks_per_s, postgres_ingest_observations_per_s), under a camera of \
            its own that is removed after.
            """)

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: "Embedding width.")
    var dimension = 512

    @Option(help: "Frames of the ingestion run.")
    var frames = 3000

    @Option(help: "Tracked segments per frame.")
    var segments = 30

    @Option(help: "Stored tracks of the larger search (the smaller is 100,000).")
    var tracks = 1_000_000

    @Option(help: "Queries per size.")
    var queries = 50

    @Option(help: "Threads of the search's first pass and of numpy.")
    var threads = 2

    @Option(help: "Folder for the stores (default: a temporary one, removed after).")
    var folder: String?

    @Flag(help: "Leave the numpy peer out.")
    var noNumpy = false

    @Option(help: ArgumentHelp("Also time ingestion into this PostgreSQL store.", valueName: "postgres://..."))
    var postgres: String?

    func validate() throws {
        guard (1...4096).contains(dimension), frames > 0, segments > 0, queries > 0, (1...256).contains(threads) else {
            throw ValidationError("--dimension, --frames, --segments, --queries and --threads must be positive")
        }
        guard tracks >= 100_000 else { throw ValidationError("--tracks must be at least 100000") }
    }

    func run() throws {
        try runReporting {
            var bench = StoreBenchmark(folder: folder ?? NSTemporaryDirectory())
            (bench.dimension, bench.frames, bench.segments, bench.tracks) = (dimension, frames, segments, tracks)
            (bench.queries, bench.threads, bench.numpy, bench.postgres) = (queries, threads, !noNumpy, postgres)
            let figures = try bench.run()
            var result = BenchResult()
            for (key, value) in figures.figures { result[key] = .number(value) }
            result.samples = figures.samples
            result.describeMachine()
            result["threads"] = .number(Double(threads))
            result["dimension"] = .number(Double(dimension))
            print(json ? try result.json() : result.text())
        }
    }
}
