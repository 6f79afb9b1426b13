import Foundation
import SegwatchTestSupport
import Testing
@testable import SegwatchStore

@Suite struct TrackIndexTests {
    static func unit(_ generator: inout SplitMix, _ dimension: Int) -> [Float] {
        let values = (0..<dimension).map { _ in Float(Double(generator.next() % 2_000_001) / 1_000_000 - 1) }
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return values.map { $0 / norm }
    }

    // The kernel's integer dot products equal a scalar loop's, at widths with and without a
    // vector tail; a code maps back to its embedding within half a step.
    @Test func codesAndTheirDotProducts() {
        var generator = SplitMix(seed: 3)
        for dimension in [1, 15, 16, 37, 512, 769] {
            let index = TrackIndex(dimension: dimension)
            let rows = (0..<50).map { _ in Self.unit(&generator, dimension) }
            for (i, row) in rows.enumerated() { index.upsert(id: Int64(i), code: TrackCode(row)) }
            let query = Self.unit(&generator, dimension), q = TrackCode(query)
            let found = index.nearest(query, count: 50, threads: 1)
            for (id, score) in found {
                let c = TrackCode(rows[Int(id)])
                let integer = zip(c.values, q.values).reduce(Int32(0)) { $0 + Int32($1.0) * Int32($1.1) }
                #expect(score == Float(integer) * c.scale * q.scale, "dimension \(dimension), row \(id)")
            }
            #expect(zip(found, found.dropFirst()).allSatisfy { $0.score >= $1.score } && Set(found.map(\.id)).count == 50)
            let code = TrackCode(rows[0])
            #expect(zip(code.values, rows[0]).allSatisfy { abs(Float($0) * code.scale - $1) <= code.scale / 2 + 1e-7 })
        }
    }

    // On 20,000 random unit vectors of CLIP's width, the first pass with 100 candidates keeps
    // every exact top 10 of 20 queries, split across threads or not; an upsert replaces a code.
    @Test func firstPassKeepsTheExactTopTen() {
        var generator = SplitMix(seed: 11)
        let dimension = 512, index = TrackIndex(dimension: dimension)
        let rows = (0..<20_000).map { _ in Self.unit(&generator, dimension) }
        for (i, row) in rows.enumerated() { index.upsert(id: Int64(i), code: TrackCode(row)) }
        for _ in 0..<20 {
            let query = Self.unit(&generator, dimension)
            let exact = rankTracks(query, among: rows.enumerated().map { TrackEmbedding(id: Int64($0.offset), embedding: $0.element) }, limit: 10)
            let one = index.nearest(query, count: 100, threads: 1), two = index.nearest(query, count: 100, threads: 2)
            #expect(Set(exact.map(\.id)).isSubset(of: Set(one.map(\.id))))
            #expect(one.map(\.id) == two.map(\.id))
        }
        index.upsert(id: 5, code: TrackCode(rows[7]))
        #expect(index.count == 20_000 && index.nearest(rows[7], count: 2, threads: 1).map(\.id).sorted() == [5, 7])
    }
}
