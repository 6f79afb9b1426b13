import SegwatchTensor
import SegwatchTestSupport
import Testing

@Suite(.twoThreads) struct StoragePoolTests {
    // Guards the steady state: running the same ops twice, the second run takes every buffer
    // from the pool.
    @Test func secondFrameAllocatesNothing() {
        let pool = StoragePool(limitBytes: 64 << 20)
        func frame() {
            let x = Tensor(shape: [1, 8, 16, 16], storage: TensorStorage(count: 8 * 16 * 16, pool: pool))
            let y = TensorStorage(count: 1000, zeroed: false, pool: pool)
            _ = (x, y)
        }
        frame()
        let first = pool.statistics
        frame()
        let second = pool.statistics
        #expect(first.allocations == 2)
        #expect(second.allocations == 2 && second.reuses == 2)
    }

    // Guards the bound: past the limit, the buffers returned longest ago go back to the system,
    // so the current shapes are the ones kept.
    @Test func cacheStaysUnderItsLimit() {
        let pool = StoragePool(limitBytes: 4096)
        do {
            let a = TensorStorage(count: 768, pool: pool), b = TensorStorage(count: 768, pool: pool)
            _ = (a, b)
        }
        #expect(pool.statistics.cachedBytes == 3072)
        // A new shape's buffer replaces the stale one, and is the one reused next.
        do { _ = TensorStorage(count: 512, pool: pool) }
        #expect(pool.statistics.cachedBytes == 2048)
        let allocations = pool.statistics.allocations
        do { _ = TensorStorage(count: 512, pool: pool) }
        #expect(pool.statistics.allocations == allocations)
        pool.drain()
        #expect(pool.statistics.cachedBytes == 0)
    }

    // Sizes that differ a little share one buffer, so shapes that vary from frame to frame
    // cache a few classes, not one buffer per shape; a class wastes at most an eighth.
    @Test func nearbySizesShareABuffer() {
        let pool = StoragePool(limitBytes: 64 << 20)
        for count in [1_000_000, 990_000, 1_040_000, 1_010_000, 1_048_576, 985_000] { _ = TensorStorage(count: count, zeroed: false, pool: pool) }
        #expect(pool.statistics.allocations == 1 && pool.statistics.reuses == 5)
        for count in [1, 63, 64, 65, 4095, 4096, 4097, 5000, 65_537, 1 << 20, (1 << 20) + 1, 123_456_789] {
            let size = StoragePool.sizeClass(count)
            #expect(size >= count && Double(size) <= Double(count) * 1.125 + 63, "\(count) -> \(size)")
            #expect(StoragePool.sizeClass(size) == size)
        }
    }

    // A batch whose size follows the number of tracks: once the largest batch has run, a
    // smaller one takes its buffers, so the sizes between do not each keep buffers of their
    // own; a buffer keeps its real size through the reuse.
    @Test func largerBufferServesASmallerRequest() {
        let pool = StoragePool(limitBytes: 256 << 20)
        func frame(_ batch: Int) {
            let a = TensorStorage(count: batch * 65_536, zeroed: false, pool: pool)
            let b = TensorStorage(count: batch * 65_536 + 100, pool: pool)
            _ = (a, b)
        }
        frame(16)
        let allocations = pool.statistics.allocations
        #expect(allocations == 2)
        for batch in [9, 13, 16, 10, 12, 15, 11, 14, 16] { frame(batch) }
        #expect(pool.statistics.allocations == allocations)
        #expect(pool.statistics.cachedBytes == (StoragePool.sizeClass(16 * 65_536) + StoragePool.sizeClass(16 * 65_536 + 100)) * 4)
        // Under half the cached size, a request still takes a cached buffer (resident already:
        // a new one would add to the resident size); a buffer is made only when none is free.
        frame(7)
        #expect(pool.statistics.allocations == allocations)
        let held = (TensorStorage(count: 7 * 65_536, zeroed: false, pool: pool), TensorStorage(count: 7 * 65_536, zeroed: false, pool: pool))
        #expect(pool.statistics.allocations == allocations)
        let third = TensorStorage(count: 7 * 65_536, zeroed: false, pool: pool)
        #expect(pool.statistics.allocations == allocations + 1)
        _ = (held, third)
    }

    // Guards the resident size after a peak: a trim lets go of the buffers no request took
    // since the last trim, keeps those taken since (and those in use), and the next request of
    // a freed size is a new allocation.
    @Test func trimFreesWhatNoRequestTookSinceTheLastTrim() {
        let pool = StoragePool(limitBytes: 256 << 20)
        let (small, medium, large) = (StoragePool.sizeClass(1000) * 4, StoragePool.sizeClass(100_000) * 4, StoragePool.sizeClass(300_000) * 4)
        do {
            let held = TensorStorage(count: 1000, zeroed: false, pool: pool)
            do { _ = (TensorStorage(count: 100_000, zeroed: false, pool: pool), TensorStorage(count: 300_000, zeroed: false, pool: pool)) }
            #expect(pool.trim() == 0 && pool.statistics.cachedBytes == medium + large, "both were returned after the pool was made")
            do { _ = TensorStorage(count: 100_000, zeroed: false, pool: pool) }
            #expect(pool.statistics.allocations == 3)
            #expect(pool.trim() == large)
            #expect(pool.statistics.cachedBytes == medium)
            do { _ = TensorStorage(count: 100_000, zeroed: false, pool: pool) }
            #expect(pool.statistics.allocations == 3, "a buffer taken since the last trim is kept")
            do { _ = TensorStorage(count: 300_000, zeroed: false, pool: pool) }
            #expect(pool.statistics.allocations == 4, "a freed buffer is allocated again")
            _ = held
        }
        #expect(pool.trim() == 0, "each buffer was taken since the last trim")
        #expect(pool.trim() == small + medium + large)
        #expect(pool.statistics.cachedBytes == 0)
    }

    // Guards the resident size of a long run: a large buffer the cache lets go of leaves the
    // process, even with small live allocations around it (with malloc it would stay, a hole
    // in the heap between them).
    @Test func releasedBuffersLeaveTheProcess() {
        let pool = StoragePool(limitBytes: 512 << 20)
        var small: [TensorStorage] = []
        do {
            var large: [TensorStorage] = []
            for _ in 0..<256 {
                large.append(TensorStorage(count: 24_000, pool: pool))   // 96 KB, under malloc's own mapping size, written
                small.append(TensorStorage(count: 16, pool: pool))
            }
        }
        let cached = residentBytes()
        pool.drain()
        #expect(cached - residentBytes() >= 16 << 20, "\(cached - residentBytes()) bytes left the process")
        _ = small
    }

    // The engine's pool under real ops: a small network's second pass allocates nothing new.
    @Test func modelPassReusesBuffers() {
        let x = Tensor(shape: [1, 4, 20, 20], values: (0..<1600).map { Float($0 % 19) / 19 })
        let w = Tensor(shape: [8, 4, 3, 3], values: (0..<288).map { Float($0 % 5) / 5 - 0.4 })
        func pass() -> Float {
            let y = activate(conv2d(x, weight: w, bias: nil, Conv2dOptions(padding: 1)), .gelu)
            let z = interpolate(y, size: (40, 40), mode: .bilinear)
            return softmax(z.reshaped([8, 1600])).toArray()[0]
        }
        _ = pass()
        let before = CPUEngine.current.storage.statistics.allocations
        _ = pass()
        #expect(CPUEngine.current.storage.statistics.allocations == before)
    }
}
