/// What a search found: the best tracks with their exact cosines, and how many tracks it
/// ranked them among.
public struct TrackSearchResult: Sendable {
    public var hits: [TrackHit]
    public var searched: Int
}

/// The `limit` tracks closest to `query` (a unit vector) among those `filter` lets through,
/// best first, with exact cosines. Without a label filter the first pass scans int8 codes
/// (`index` when given, which then holds every track of the query's width, else built from the
/// store for this search) and the exact embeddings of the best `candidates` rank them; a label filter narrows
/// the tracks enough (and changes with relabeling) that they are ranked exactly.
public func searchTracks(_ store: any SegmentStore, query: [Float], filter: TrackFilter, limit: Int, index: TrackIndex? = nil,
                         candidates: Int? = nil, threads: Int = 2) throws(StoreError) -> TrackSearchResult {
    if filter.label != nil {
        let all = try store.candidates(filter)
        return TrackSearchResult(hits: rankTracks(query, among: all, limit: limit), searched: all.count)
    }
    let scanned: TrackIndex
    if let index, filter == TrackFilter(), index.dimension == query.count {
        scanned = index
    } else {
        scanned = TrackIndex(dimension: query.count)
        try store.codes(filter, into: scanned)
    }
    let first = scanned.nearest(query, count: candidates ?? max(100, 10 * limit), threads: threads)
    let exact = try store.embeddings(first.map(\.id))
    return TrackSearchResult(hits: rankTracks(query, among: exact, limit: limit), searched: scanned.count)
}
