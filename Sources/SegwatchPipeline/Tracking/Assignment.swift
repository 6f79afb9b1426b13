/// The minimum-cost assignment of rows to columns (the Hungarian method, in the O(n^2 m)
/// shortest-augmenting-path form with potentials). `cost[r][c]` is finite; a pair the caller
/// forbids carries a cost above `forbidden`, and is left unassigned rather than returned.
///
/// Returns, for each row, its column or nil. Every row is matched when rows <= columns (every
/// column otherwise), so a forbidden pair is only ever chosen where nothing else was left.
public func minimumCostAssignment(_ cost: [[Double]], forbidden: Double = .greatestFiniteMagnitude) -> [Int?] {
    let rows = cost.count, columns = cost.first?.count ?? 0
    guard rows > 0, columns > 0 else { return [Int?](repeating: nil, count: rows) }
    precondition(cost.allSatisfy { $0.count == columns }, "assignment: rows of different lengths")
    if rows > columns {
        // The method needs rows <= columns: solve the transpose.
        let transposed = (0..<columns).map { c in (0..<rows).map { cost[$0][c] } }
        var result = [Int?](repeating: nil, count: rows)
        for (c, r) in minimumCostAssignment(transposed, forbidden: forbidden).enumerated() {
            if let r { result[r] = c }
        }
        return result
    }
    // 1-based potentials u (rows) and v (columns); owner[c] is the row holding column c.
    var u = [Double](repeating: 0, count: rows + 1), v = [Double](repeating: 0, count: columns + 1)
    var owner = [Int](repeating: 0, count: columns + 1), way = [Int](repeating: 0, count: columns + 1)
    for row in 1...rows {
        owner[0] = row
        var column = 0
        var slack = [Double](repeating: .infinity, count: columns + 1)
        var used = [Bool](repeating: false, count: columns + 1)
        repeat {
            used[column] = true
            let r = owner[column]
            var delta = Double.infinity, next = 0
            for c in 1...columns where !used[c] {
                let reduced = cost[r - 1][c - 1] - u[r] - v[c]
                if reduced < slack[c] { slack[c] = reduced; way[c] = column }
                if slack[c] < delta { delta = slack[c]; next = c }
            }
            for c in 0...columns {
                if used[c] { u[owner[c]] += delta; v[c] -= delta } else { slack[c] -= delta }
            }
            column = next
        } while owner[column] != 0
        repeat {
            let previous = way[column]
            owner[column] = owner[previous]
            column = previous
        } while column != 0
    }
    var result = [Int?](repeating: nil, count: rows)
    for c in 1...columns where owner[c] != 0 && cost[owner[c] - 1][c - 1] <= forbidden {
        result[owner[c] - 1] = c - 1
    }
    return result
}
