// Search ranks tracks by the cosine between the query's embedding and each track's embedding
// (both unit vectors, so their dot product).

/// A ranked track: its store id, its cosine with the query, and its place among every
/// candidate (1 is the closest).
public struct TrackHit: Sendable, Equatable {
    public var id: Int64
    public var score: Double
    public var rank: Int
}

/// The `limit` candidates closest to `query` (a unit vector), best first, with exact cosines
/// (accumulated in double); ties keep the lower id first. Candidates of another width are
/// left out.
public func rankTracks(_ query: [Float], among candidates: [TrackEmbedding], limit: Int) -> [TrackHit] {
    var scored: [(id: Int64, score: Double)] = []
    scored.reserveCapacity(candidates.count)
    for candidate in candidates where candidate.embedding.count == query.count {
        var dot = 0.0
        for i in query.indices { dot += Double(query[i]) * Double(candidate.embedding[i]) }
        scored.append((candidate.id, dot))
    }
    scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
    return scored.prefix(max(limit, 0)).enumerated().map { TrackHit(id: $0.element.id, score: $0.element.score, rank: $0.offset + 1) }
}
