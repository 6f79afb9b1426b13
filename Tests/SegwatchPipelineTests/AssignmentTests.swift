import SegwatchPipeline
import SegwatchTestSupport
import Testing

struct AssignmentTests {
    /// The cheapest assignment by trying every injection of rows into columns.
    private func bruteForce(_ cost: [[Double]]) -> Double {
        let rows = cost.count, columns = cost[0].count
        func search(_ row: Int, _ used: Set<Int>) -> Double {
            if row == rows || used.count == columns { return 0 }
            var best = Double.infinity
            if rows - row > columns - used.count { best = search(row + 1, used) }  // this row may go unmatched
            for c in 0..<columns where !used.contains(c) {
                best = min(best, cost[row][c] + search(row + 1, used.union([c])))
            }
            return best
        }
        return search(0, [])
    }

    private func total(_ cost: [[Double]], _ assignment: [Int?]) -> Double {
        assignment.enumerated().reduce(0) { sum, pair in sum + (pair.element.map { cost[pair.offset][$0] } ?? 0) }
    }

    // Greedy takes (0, 0) at cost 1 and leaves row 1 with cost 10; the optimum is 2 + 2.
    @Test func beatsGreedy() {
        let cost: [[Double]] = [[1, 2], [2, 10]]
        #expect(minimumCostAssignment(cost) == [1, 0])
    }

    @Test func agreesWithBruteForceOnRandomMatrices() {
        var generator = SplitMix(seed: 7)
        for trial in 0..<200 {
            let rows = 1 + Int(generator.next() % 5), columns = 1 + Int(generator.next() % 5)
            let cost = (0..<rows).map { _ in (0..<columns).map { _ in Double(generator.next() % 1000) / 100 } }
            let assignment = minimumCostAssignment(cost)
            let columnsUsed = assignment.compactMap { $0 }
            #expect(Set(columnsUsed).count == columnsUsed.count, "trial \(trial): a column used twice")
            #expect(columnsUsed.count == min(rows, columns), "trial \(trial): not every row or column matched")
            #expect(abs(total(cost, assignment) - bruteForce(cost)) < 1e-9, "trial \(trial): \(cost)")
        }
    }

    @Test func forbiddenPairsStayUnassigned() {
        // Row 1 can only take column 0, which row 0 prefers too but can do without.
        let cost: [[Double]] = [[0.1, 0.5], [0.2, 5]]
        #expect(minimumCostAssignment(cost, forbidden: 1) == [1, 0])
        // Both rows can only take column 0: one of them stays unmatched.
        let crowded: [[Double]] = [[0.1, 5], [0.2, 5]]
        #expect(minimumCostAssignment(crowded, forbidden: 1) == [0, nil])
        #expect(minimumCostAssignment([], forbidden: 1).isEmpty)
        #expect(minimumCostAssignment([[], []]) == [nil, nil])
    }
}
