// Search at scale: an exact float32 scan of a million 512-wide embeddings reads 2 GB, bounded
// by memory bandwidth (about 190 ms on two cores). The first pass scans int8 codes instead (a
// quarter of the bytes, each embedding scaled by its largest magnitude to 127), keeps the best
// candidates by that approximate cosine, and the exact float32 cosines of those candidates
// rank them (`TrackSearch`): reported scores are always exact. An int8 code's rounding moves a
// cosine of two unit vectors by about 1e-3; keeping ten times the asked-for results (at least
// 100) keeps every true top-10 among the candidates (recall@10 in `segwatch bench store`).
import CCodeScan
import Dispatch
import Foundation

/// An embedding's int8 code and the scale that maps it back: `value ≈ code * scale`.
public struct TrackCode: Sendable, Equatable {
    public var values: [Int8]
    public var scale: Float

    public init(values: [Int8], scale: Float) {
        (self.values, self.scale) = (values, scale)
    }

    /// Each value rounded to the nearest multiple of `max|x| / 127`.
    public init(_ embedding: [Float]) {
        let largest = embedding.reduce(0) { max($0, abs($1)) }
        scale = largest > 0 ? largest / 127 : 1
        let inverse = 1 / scale
        values = embedding.map { Int8(max(-127, min(127, ($0 * inverse).rounded()))) }
    }
}

/// The int8 codes of many tracks, in memory, scanned in parallel. Any thread: writers (the
/// daemon's cameras) and searches take turns.
public final class TrackIndex: @unchecked Sendable {
    public let dimension: Int
    private let lock = NSLock()
    private(set) var ids: [Int64] = []
    private var codes: [Int8] = []
    private var scales: [Float] = []
    private var rowOf: [Int64: Int] = [:]

    public init(dimension: Int) {
        self.dimension = dimension
    }

    public var count: Int { lock.withLock { ids.count } }

    /// Adds a track, or replaces its code when it is already there.
    public func upsert(id: Int64, code: TrackCode) {
        guard code.values.count == dimension else { return }
        lock.lock()
        defer { lock.unlock() }
        if let row = rowOf[id] {
            codes.replaceSubrange((row * dimension)..<((row + 1) * dimension), with: code.values)
            scales[row] = code.scale
        } else {
            rowOf[id] = ids.count
            ids.append(id)
            codes += code.values
            scales.append(code.scale)
        }
    }

    /// Forgets every track (before loading the store's codes again, after retention).
    public func removeAll() {
        lock.withLock {
            ids.removeAll()
            codes.removeAll()
            scales.removeAll()
            rowOf.removeAll()
        }
    }

    public func reserve(_ count: Int) {
        lock.lock()
        defer { lock.unlock() }
        ids.reserveCapacity(count)
        codes.reserveCapacity(count * dimension)
        scales.reserveCapacity(count)
    }

    /// The `count` tracks whose codes are closest to `query` (a unit vector), best first, with
    /// their approximate cosines; `threads` share the scan.
    public func nearest(_ query: [Float], count: Int, threads: Int = 2) -> [(id: Int64, score: Float)] {
        lock.lock()
        defer { lock.unlock() }
        guard query.count == dimension, !ids.isEmpty, count > 0 else { return [] }
        let code = TrackCode(query)
        let rows = ids.count, parts = max(1, min(threads, rows / 4096))
        var partial = [[(row: Int, score: Float)]](repeating: [], count: parts)
        partial.withUnsafeMutableBufferPointer { results in
            let results = UnsafeMutableSendable(results)
            codes.withUnsafeBufferPointer { codes in
                let codes = UnsafeSendable(codes)
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    let begin = rows * part / parts, end = rows * (part + 1) / parts
                    var scores = [Int32](repeating: 0, count: end - begin)
                    code.values.withUnsafeBufferPointer { query in
                        code_scan_dots(codes.value.baseAddress! + begin * dimension, end - begin, dimension, query.baseAddress!, &scores)
                    }
                    results.value[part] = topScores(scores, offset: begin, scales: scales, queryScale: code.scale, count: count)
                }
            }
        }
        let merged = partial.flatMap { $0 }.sorted { $0.score != $1.score ? $0.score > $1.score : $0.row < $1.row }
        return merged.prefix(count).map { (ids[$0.row], $0.score) }
    }
}

/// The `count` best of one part's integer scores, as cosines.
private func topScores(_ scores: [Int32], offset: Int, scales: [Float], queryScale: Float, count: Int) -> [(row: Int, score: Float)] {
    // A running threshold: the scores are only sorted once the kept ones outnumber `count` twice.
    var kept: [(row: Int, score: Float)] = []
    kept.reserveCapacity(2 * count + 1)
    var floor = -Float.infinity
    for (i, integer) in scores.enumerated() {
        let score = Float(integer) * scales[offset + i] * queryScale
        guard score > floor else { continue }
        kept.append((offset + i, score))
        if kept.count >= 2 * count {
            kept.sort { $0.score > $1.score }
            kept.removeLast(kept.count - count)
            floor = kept[count - 1].score
        }
    }
    kept.sort { $0.score > $1.score }
    return Array(kept.prefix(count))
}

/// A pointer handed to the scan's threads, which write disjoint parts of it.
private struct UnsafeMutableSendable<T>: @unchecked Sendable { let value: T; init(_ value: T) { self.value = value } }
private struct UnsafeSendable<T>: @unchecked Sendable { let value: T; init(_ value: T) { self.value = value } }
