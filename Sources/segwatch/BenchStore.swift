import ArgumentParser
import Dispatch
import Foundation
import SegwatchService
import SegwatchStore

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

    func validate() throws {
        guard (1...4096).contains(dimension), frames > 0, segments > 0, queries > 0, (1...256).contains(threads) else {
            throw ValidationError("--dimension, --frames, --segments, --queries and --threads must be positive")
        }
        guard tracks >= 100_000 else { throw ValidationError("--tracks must be at least 100000") }
    }

    func run() throws {
        try runReporting {
            let root = URL(fileURLWithPath: folder ?? NSTemporaryDirectory()).appendingPathComponent("segwatch-bench-store-\(getpid())")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: root) }
            var result = BenchResult()
            try ingest(root.appendingPathComponent("ingest.sqlite").path, into: &result)
            try search(root, into: &result)
            result.describeMachine()
            result["threads"] = .number(Double(threads))
            result["dimension"] = .number(Double(dimension))
            print(json ? try result.json() : result.text())
        }
    }

    private func randomUnit(_ state: inout UInt64) -> [Float] {
        var values = [Float](repeating: 0, count: dimension), norm: Float = 0
        for i in values.indices {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            values[i] = Float(Double((z ^ (z >> 31)) >> 11) / Double(1 << 53) * 2 - 1)
            norm += values[i] * values[i]
        }
        let inverse = 1 / norm.squareRoot()
        return values.map { $0 * inverse }
    }

    private func ingest(_ path: String, into result: inout BenchResult) throws {
        let store = try SQLiteStore(path: path)
        let run = try store.beginRun(RunRecord(camera: "bench", started: storeTime(Date()), clip: "synthetic", clipDigest: "0", headDigest: nil,
                                               vocabularyDigest: "0", labels: ["car"], templates: ["{}"], dimension: dimension))
        var ledger = TrackLedger(run: run, camera: "bench")
        var state: UInt64 = 1
        let pool = (0..<1024).map { _ in randomUnit(&state) }
        let thumbnail = Thumbnail(format: "jpeg", data: Data(repeating: 0x5A, count: 6144))
        var ended = 0, observations = 0
        let start = DispatchTime.now(), base = storeTime(Date())
        for frame in 0..<frames {
            // Tracks `frame / 10 * segments ..< +segments` live on frames 10k ..< 10k + 10.
            let generation = frame / 10, age = frame % 10
            let observed = (0..<segments).map { s -> ObservedSegment in
                let track = generation * segments + s + 1, embedding = pool[(track * 7 + age) % pool.count]
                return ObservedSegment(track: track, label: "car", score: 0.5 + 0.04 * Double(age), embedding: embedding,
                                       scoredEmbedding: embedding, box: [s * 10, age, 40, 30])
            }
            var events: [ObservedTrackEvent] = []
            for s in 0..<segments {
                let track = generation * segments + s + 1
                if age == 0 { events.append(ObservedTrackEvent(kind: .start, track: track, label: "car", previous: nil, pts: Double(frame), bestScore: 0.5)) }
                if age == 9 { events.append(ObservedTrackEvent(kind: .end, track: track, label: "car", previous: nil, pts: Double(frame), bestScore: 0.86)) }
            }
            var (batch, newBest) = ledger.frame(time: base + Int64(frame) * 1000, pts: Double(frame), segments: observed, events: events,
                                                stuff: [("sky", 0.3), ("road", 0.2)])
            batch.thumbnails = newBest.map { ($0, thumbnail) }
            try store.write(batch)
            observations += segments
            ended += events.count(where: { $0.kind == .end })
        }
        let seconds = milliseconds(since: start) / 1000
        result["ingest_tracks_per_s"] = .number(Double(ended) / seconds)
        result["ingest_observations_per_s"] = .number(Double(observations) / seconds)
        result["ingest_frames_per_s"] = .number(Double(frames) / seconds)
    }

    private func search(_ root: URL, into result: inout BenchResult) throws {
        let path = root.appendingPathComponent("search.sqlite").path
        let store = try SQLiteStore(path: path)
        let run = try store.beginRun(RunRecord(camera: "bench", started: storeTime(Date()), clip: "synthetic", clipDigest: "0", headDigest: nil,
                                               vocabularyDigest: "0", labels: ["car"], templates: ["{}"], dimension: dimension))
        var state: UInt64 = 2
        var embeddings: [Float] = []
        embeddings.reserveCapacity(tracks * dimension)
        var queryState: UInt64 = 3
        let queryVectors = (0..<queries).map { _ in randomUnit(&queryState) }
        var loadSeconds = 0.0
        var peerFiles: [Int: String] = [:]
        for size in Array(Set([100_000, tracks])).sorted() {
            // Store the tracks up to `size`, 5,000 a transaction, and their codes in the index.
            let start = DispatchTime.now()
            while embeddings.count / dimension < size {
                let first = embeddings.count / dimension
                var batch = FrameBatch(run: run, camera: "bench", time: Int64(first), pts: Double(first))
                for track in first..<min(size, first + 5000) {
                    let embedding = randomUnit(&state)
                    embeddings += embedding
                    batch.tracks.append(TrackRow(track: track + 1, start: Int64(track), end: Int64(track) + 1000, startPts: 0, endPts: 1, ended: true,
                                                 label: "car", score: 0.5, observations: 10, embedding: embedding, bestEmbedding: embedding,
                                                 bestScore: 0.5, bestPts: 0))
                }
                try store.write(batch)
            }
            loadSeconds += milliseconds(since: start) / 1000
            let indexStart = DispatchTime.now()
            let loaded = TrackIndex(dimension: dimension)
            loaded.reserve(size)
            try store.codes(TrackFilter(), into: loaded)
            result["index_load_ms_\(size)"] = .number(milliseconds(since: indexStart))

            var latencies: [Double] = [], recalled = 0
            for query in queryVectors {
                let start = DispatchTime.now()
                let found = try searchTracks(store, query: query, filter: TrackFilter(), limit: 10, index: loaded, threads: threads)
                latencies.append(milliseconds(since: start))
                if size == tracks {
                    let exact = exactTop10(query, embeddings, rows: size)
                    recalled += Set(found.hits.map { $0.id }).intersection(Set(exact.map { Int64($0 + 1) })).count
                }
            }
            result.samples["search_ms_\(size)"] = latencies
            result["search_p50_ms_\(size)"] = .number(percentile(latencies, 0.5))
            result["search_p95_ms_\(size)"] = .number(percentile(latencies, 0.95))
            if size == tracks { result["recall_at_10_\(size)"] = .number(Double(recalled) / Double(10 * queries)) }
            if !noNumpy {
                let file = root.appendingPathComponent("embeddings-\(size).npy").path
                try writeNPY(embeddings, rows: size, columns: dimension, to: file)
                peerFiles[size] = file
            }
        }
        result["store_load_tracks_per_s"] = .number(Double(tracks) / loadSeconds)
        _ = try store.prune(before: nil, maxBytes: nil)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        result["store_bytes_per_million_tracks"] = .number(Double(bytes) * 1_000_000 / Double(tracks))
        if !noNumpy {
            let queriesFile = root.appendingPathComponent("queries.npy").path
            try writeNPY(queryVectors.flatMap { $0 }, rows: queries, columns: dimension, to: queriesFile)
            for (size, file) in peerFiles.sorted(by: { $0.key < $1.key }) {
                let latencies = try numpyPeer(embeddings: file, queries: queriesFile, root: root)
                result.samples["numpy_search_ms_\(size)"] = latencies
                result["numpy_search_p50_ms_\(size)"] = .number(percentile(latencies, 0.5))
                result["numpy_search_p95_ms_\(size)"] = .number(percentile(latencies, 0.95))
                try? FileManager.default.removeItem(atPath: file)
            }
        }
    }

    /// The rows of the exact top 10 by float32 dot product (accumulated in double).
    private func exactTop10(_ query: [Float], _ embeddings: [Float], rows: Int) -> [Int] {
        var best: [(row: Int, score: Double)] = []
        embeddings.withUnsafeBufferPointer { values in
            for row in 0..<rows {
                var dot = 0.0
                let base = row * dimension
                for d in 0..<dimension { dot += Double(values[base + d]) * Double(query[d]) }
                if best.count < 10 || dot > best[best.count - 1].score {
                    best.append((row, dot))
                    best.sort { $0.score > $1.score }
                    if best.count > 10 { best.removeLast() }
                }
            }
        }
        return best.map(\.row)
    }

    private func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
    }

    /// A float32 `[rows, columns]` matrix as a `.npy` file (format 1.0, little-endian, C order).
    private func writeNPY(_ values: [Float], rows: Int, columns: Int, to path: String) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        data += Data(header.utf8)
        values.withUnsafeBytes { data += Data($0.prefix(rows * columns * 4)) }
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// The peer: numpy's brute-force search (a matrix-vector product and a top-k) over the same
    /// embeddings, each query timed; its milliseconds.
    private func numpyPeer(embeddings: String, queries: String, root: URL) throws -> [Double] {
        let script = root.appendingPathComponent("numpy_search.py").path
        try Self.numpyScript.write(toFile: script, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, embeddings, queries]
        var environment = ProcessInfo.processInfo.environment
        for name in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"] { environment[name] = "\(threads)" }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let times = try? JSONDecoder().decode([Double].self, from: data) else {
            throw CommandError("the numpy peer failed (status \(process.terminationStatus)); is python3-numpy installed? (--no-numpy leaves it out)")
        }
        return times
    }

    /// The peer, as a script: exact cosines of every stored embedding with the query
    /// (`embeddings @ query`), the top 10 by `argpartition`, sorted.
    static let numpyScript = """
        import json, sys, time
        import numpy as np
        embeddings = np.load(sys.argv[1])
        queries = np.load(sys.argv[2])
        def search(q):
            scores = embeddings @ q
            top = np.argpartition(-scores, 10)[:10]
            return top[np.argsort(-scores[top])]
        search(queries[0])
        times = []
        for q in queries:
            start = time.perf_counter()
            search(q)
            times.append((time.perf_counter() - start) * 1000)
        print(json.dumps(times))

        """
}
