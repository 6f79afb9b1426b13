import Dispatch
import Foundation
import SegwatchStore

/// `segwatch bench store`: the segment store with synthetic tracks. Ingestion through a run's
/// path (`TrackLedger`, one transaction a frame); search over 100,000 and `tracks` stored
/// tracks as `segwatch search` ranks (the int8 first pass held in memory as the daemon holds
/// it, then the exact cosines of the best candidates read from the store), its recall@10
/// against an exact float32 scan, the store's size, and the peer: numpy's brute-force search
/// over the same embeddings, in the same run.
public struct StoreBenchmark: Sendable {
    public var dimension = 512
    public var frames = 3000
    public var segments = 30
    public var tracks = 1_000_000
    public var queries = 50
    public var threads = 2
    /// Where the stores are made (a folder of their own inside it, removed after).
    public var folder: String
    public var numpy = true
    /// A PostgreSQL store to time ingestion into as well (its tracks are removed after).
    public var postgres: String?

    public init(folder: String) {
        self.folder = folder
    }

    /// The figures, by the keys `bench store --json` reports, and the samples behind the percentiles.
    public struct Result: Sendable {
        public var figures: [String: Double] = [:]
        public var samples: [String: [Double]] = [:]
    }

    public func run() throws -> Result {
        let root = URL(fileURLWithPath: folder).appendingPathComponent("segwatch-bench-store-\(getpid())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        var result = Result()
        let sqlite = try SQLiteStore(path: root.appendingPathComponent("ingest.sqlite").path)
        try ingest(into: sqlite, camera: "bench", prefix: "", result: &result)
        if let postgres {
            let store = try PostgresStore(url: postgres)
            let camera = "bench-\(getpid())-\(storeTime(Date()))"
            defer { _ = try? store.removeCamera(camera) }
            try ingest(into: store, camera: camera, prefix: "postgres_", result: &result)
        }
        try search(root, into: &result)
        return result
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

    /// A run's frames written into `store` under `camera`; the figures' keys start with `prefix`.
    private func ingest(into store: any SegmentStore, camera: String, prefix: String, result: inout Result) throws {
        let run = try store.beginRun(RunRecord(camera: camera, started: storeTime(Date()), clip: "synthetic", clipDigest: "0", headDigest: nil,
                                               vocabularyDigest: "0", labels: ["car"], templates: ["{}"], dimension: dimension))
        var ledger = TrackLedger(run: run, camera: camera)
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
        result.figures[prefix + "ingest_tracks_per_s"] = Double(ended) / seconds
        result.figures[prefix + "ingest_observations_per_s"] = Double(observations) / seconds
        result.figures[prefix + "ingest_frames_per_s"] = Double(frames) / seconds
    }

    private func search(_ root: URL, into result: inout Result) throws {
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
            result.figures["index_load_ms_\(size)"] = milliseconds(since: indexStart)

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
            result.figures["search_p50_ms_\(size)"] = nearestRankPercentile(latencies, 0.5) ?? .nan
            result.figures["search_p95_ms_\(size)"] = nearestRankPercentile(latencies, 0.95) ?? .nan
            if size == tracks { result.figures["recall_at_10_\(size)"] = Double(recalled) / Double(10 * queries) }
            if numpy {
                let file = root.appendingPathComponent("embeddings-\(size).npy").path
                try writeNPY(embeddings, rows: size, columns: dimension, to: file)
                peerFiles[size] = file
            }
        }
        result.figures["store_load_tracks_per_s"] = Double(tracks) / loadSeconds
        _ = try store.prune(before: nil, framesBefore: nil, maxBytes: nil)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        result.figures["store_bytes_per_million_tracks"] = Double(bytes) * 1_000_000 / Double(tracks)
        if numpy {
            let queriesFile = root.appendingPathComponent("queries.npy").path
            try writeNPY(queryVectors.flatMap { $0 }, rows: queries, columns: dimension, to: queriesFile)
            for (size, file) in peerFiles.sorted(by: { $0.key < $1.key }) {
                let latencies = try numpyPeer(embeddings: file, queries: queriesFile, root: root)
                result.samples["numpy_search_ms_\(size)"] = latencies
                result.figures["numpy_search_p50_ms_\(size)"] = nearestRankPercentile(latencies, 0.5) ?? .nan
                result.figures["numpy_search_p95_ms_\(size)"] = nearestRankPercentile(latencies, 0.95) ?? .nan
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
            throw ServiceError("the numpy peer failed (status \(process.terminationStatus)); is python3-numpy installed? (--no-numpy leaves it out)")
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
