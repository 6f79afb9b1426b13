import Foundation
import Logging
import SegwatchStore
import Synchronization

/// `segwatch worker`: claims queued files from a PostgreSQL store, one at a time, and analyzes
/// each into it (`PostgresStore.claimJob`). While a file is analyzed its lease is renewed every
/// third of the lease; a worker that dies stops renewing it, and the job is claimed again once
/// it runs out. Stopped (SIGTERM), the worker finishes its frame and gives the job back.
public final class JobWorker: Sendable {
    public struct Settings: Sendable {
        /// How the worker names itself in the queue (host and process by default).
        public var name: String
        /// Seconds a claim holds a job without being renewed.
        public var lease: Double = 60
        /// Seconds between looks at an empty queue.
        public var poll: Double = 2
        /// Return once the queue has no job left to claim, rather than wait for more.
        public var exitWhenIdle = false

        public init(name: String) { self.name = name }

        /// This host's name and this process's id.
        public static var defaultName: String {
            "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
        }
    }

    /// What became of one claimed job.
    public struct Outcome: Sendable {
        public var job: Job
        /// Frames analyzed, when it was done; the error, when it failed.
        public var frames: Int?
        public var error: String?
        /// The lease ran out before the job was done: another worker has it now.
        public var lost = false
        /// The worker was stopped and gave the job back to the queue.
        public var released = false
    }

    public let store: PostgresStore
    public let settings: Settings
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)
    private let stopHandler = Mutex<(@Sendable () -> Void)?>(nil)

    public init(store: PostgresStore, settings: Settings, logger: Logger) {
        (self.store, self.settings, self.logger) = (store, settings, logger)
    }

    /// Stops after the frame in flight; the job is given back. Any thread.
    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        stopHandler.withLock { $0 }?()
    }

    /// Claims and analyzes jobs until stopped (or, with `exitWhenIdle`, until none is left).
    /// `analyze` analyzes one claimed job's file into the store under the job's camera, its run
    /// fenced by the attempt, and returns the frames it analyzed; it registers how to stop it.
    public func run(analyze: (Job, JobFence, _ onStop: (@escaping @Sendable () -> Void) -> Void) async throws -> Int,
                    report: (Outcome) -> Void = { _ in }) async {
        while !stopped.load(ordering: .relaxed) {
            let claimed: (job: Job, fence: JobFence)?
            do {
                claimed = try store.claimJob(worker: settings.name, lease: settings.lease)
            } catch {
                // The database is away: the worker waits for it rather than exit.
                logger.error("cannot claim a job: \(error)")
                try? await Task.sleep(for: .seconds(settings.poll))
                continue
            }
            guard let (job, fence) = claimed else {
                if settings.exitWhenIdle { return }
                try? await Task.sleep(for: .seconds(settings.poll))
                continue
            }
            logger.info("job \(job.id): \(job.file) (attempt \(fence.attempt))")
            report(await work(job, fence, analyze: analyze))
        }
    }

    private func work(_ job: Job, _ fence: JobFence, analyze: (Job, JobFence, (@escaping @Sendable () -> Void) -> Void) async throws -> Int) async -> Outcome {
        var outcome = Outcome(job: job)
        let renewal = Task { [store, settings, logger] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(settings.lease / 3))
                guard !Task.isCancelled else { return }
                do {
                    if try !store.renewLease(fence, lease: settings.lease) {
                        logger.warning("job \(job.id): its lease ran out and another worker has it")
                        return
                    }
                } catch {
                    logger.error("job \(job.id): cannot renew its lease: \(error)")
                }
            }
        }
        defer { renewal.cancel() }
        do {
            let frames = try await analyze(job, fence) { handler in
                self.stopHandler.withLock { $0 = handler }
                if self.stopped.load(ordering: .relaxed) { handler() }
            }
            stopHandler.withLock { $0 = nil }
            if stopped.load(ordering: .relaxed) {
                outcome.released = try store.releaseJob(fence)
                return outcome
            }
            outcome.frames = frames
            outcome.lost = try !store.finishJob(fence, frames: frames)
        } catch let error as StoreError where error.isUnavailable {
            // The database went away mid-file: not the file's failure. The job goes back to the
            // queue (or, while the database is away, to whoever claims it after its lease).
            stopHandler.withLock { $0 = nil }
            outcome.error = "\(error)"
            outcome.released = (try? store.releaseJob(fence)) == true
        } catch {
            stopHandler.withLock { $0 = nil }
            outcome.error = "\(error)"
            // A write refused for a lost lease is not the file's failure: the job is another
            // worker's now, and this attempt can no longer finish it.
            outcome.lost = (try? store.finishJob(fence, frames: 0, error: "\(error)")) != true
        }
        outcome.job = (try? store.job(job.id)) ?? job
        return outcome
    }
}
