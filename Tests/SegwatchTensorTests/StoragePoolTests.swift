import SegwatchTensor
import Testing

struct StoragePoolTests {
    // Guards the steady state: running the same ops twice, the second run takes every buffer
    // from the pool.
    @Test func secondFrameAllocatesNothing() {
        CPUThreads.set(2)
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

    // Guards the bound: buffers beyond the limit go back to the system.
    @Test func cacheStaysUnderItsLimit() {
        let pool = StoragePool(limitBytes: 4096)
        do {
            let a = TensorStorage(count: 800, pool: pool), b = TensorStorage(count: 800, pool: pool)
            _ = (a, b)
        }
        #expect(pool.statistics.cachedBytes == 3200)
        pool.drain()
        #expect(pool.statistics.cachedBytes == 0)
    }

    // The shared pool under real ops: a small network's second pass allocates nothing new.
    @Test func modelPassReusesBuffers() {
        CPUThreads.set(2)
        let x = Tensor(shape: [1, 4, 20, 20], values: (0..<1600).map { Float($0 % 19) / 19 })
        let w = Tensor(shape: [8, 4, 3, 3], values: (0..<288).map { Float($0 % 5) / 5 - 0.4 })
        func pass() -> Float {
            let y = activate(conv2d(x, weight: w, bias: nil, Conv2dOptions(padding: 1)), .gelu)
            let z = interpolate(y, size: (40, 40), mode: .bilinear)
            return softmax(z.reshaped([8, 1600])).toArray()[0]
        }
        _ = pass()
        let before = StoragePool.shared.statistics.allocations
        _ = pass()
        #expect(StoragePool.shared.statistics.allocations == before)
    }
}
