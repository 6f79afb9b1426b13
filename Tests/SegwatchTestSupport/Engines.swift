import SegwatchTensor

/// The engine the tests run models and kernels on: two threads, as CI's machines have. One for
/// the whole test process, since an engine's workers live as long as the process.
public let testEngine = CPUEngine(threads: 2)

/// The CPU backend on `testEngine`.
public let testBackend = CPUBackend(engine: testEngine)
