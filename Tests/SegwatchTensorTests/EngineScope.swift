import SegwatchTensor
import SegwatchTestSupport
import Testing

/// Runs a suite's tests under `testEngine`, so that kernels called directly (not through a
/// backend) take its two threads and buffers, as they do in a model under `CPUBackend`.
struct TestEngineScope: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await testEngine.run { try await function() }
    }
}

extension Trait where Self == TestEngineScope {
    /// Kernels run on two threads (`testEngine`).
    static var twoThreads: Self { TestEngineScope() }
}
