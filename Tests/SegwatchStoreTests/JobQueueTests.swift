import Dispatch
import Foundation
import SegwatchTestSupport
import Synchronization
import Testing
@testable import SegwatchStore

@Suite struct JobQueueTests {
    private func frame(_ run: Int64, _ job: Job, _ fence: JobFence, track: Int) -> FrameBatch {
        var batch = FrameBatch(run: run, camera: job.camera, time: 1000 + Int64(track), pts: Double(track))
        batch.tracks = [SegmentStoreTests.row(track, start: 1000, end: 1000, label: "car", embedding: [1, 0, 0])]
        batch.job = fence
        return batch
    }

    private func record(_ job: Job, _ fence: JobFence) -> RunRecord {
        var record = SegmentStoreTests.run(job.camera)
        record.job = fence
        return record
    }

    // A worker's lease runs out mid-file and another claims the job: the claim deletes what the
    // first attempt wrote, the first worker's later writes, renewals and finish are refused, and
    // the job ends done once, with the second attempt's tracks only.
    @Test func aJobClaimedAgainIsWrittenOnce() throws {
        let test = try TestStore(.postgres)
        let store = try #require(try test.open() as? PostgresStore)
        let jobs = try store.submit(["/videos/gate.mp4", "/videos/yard.mp4"])
        #expect(jobs.map(\.state) == [.queued, .queued] && jobs[0].camera == "gate.mp4 (job \(jobs[0].id))")

        let (first, fence1) = try #require(try store.claimJob(worker: "w1", lease: 0.5))
        #expect(first.id == jobs[0].id && first.state == .running && first.worker == "w1" && fence1.attempt == 1)
        let run1 = try store.beginRun(record(first, fence1))
        try store.write(frame(run1, first, fence1, track: 1))
        try store.write(frame(run1, first, fence1, track: 2))
        #expect(try store.renewLease(fence1, lease: 0.5))

        Thread.sleep(forTimeInterval: 0.7)
        let (again, fence2) = try #require(try store.claimJob(worker: "w2", lease: 30))
        #expect(again.id == first.id && fence2.attempt == 2 && again.worker == "w2")
        #expect(try store.candidates(TrackFilter(camera: first.camera)).isEmpty)

        #expect(throws: StoreError.self) { try store.write(frame(run1, first, fence1, track: 3)) }
        #expect(throws: StoreError.self) { try store.beginRun(record(first, fence1)) }
        #expect(try !store.renewLease(fence1, lease: 30) && !store.finishJob(fence1, frames: 3))

        let run2 = try store.beginRun(record(again, fence2))
        for track in 1...3 { try store.write(frame(run2, again, fence2, track: track)) }
        #expect(try store.finishJob(fence2, frames: 3))
        let done = try #require(try store.job(first.id))
        #expect(done.state == .done && done.frames == 3 && done.tracks == 3 && done.attempts == 2 && done.finished != nil)
        #expect(try store.runs().filter { $0.record.camera == first.camera }.map(\.id) == [run2])
        #expect(try store.tracks(try store.candidates(TrackFilter(camera: first.camera)).map(\.id)).allSatisfy { $0.run == run2 })

        // The other job, then none; the listing by state.
        let (second, fence3) = try #require(try store.claimJob(worker: "w2", lease: 30))
        let none = try store.claimJob(worker: "w3", lease: 30)
        #expect(second.id == jobs[1].id && none == nil)
        #expect(try store.finishJob(fence3, frames: 0, error: "cannot read it"))
        #expect(try store.jobs(states: [.failed]).map(\.id) == [second.id] && store.job(second.id)?.error == "cannot read it")
        #expect(try store.jobs().map(\.state) == [.done, .failed])
    }

    // A worker stopped gives its job back; a job whose workers keep dying is given up after
    // `maximumJobAttempts` claims.
    @Test func releasedAndAbandonedJobs() throws {
        let test = try TestStore(.postgres)
        let store = try #require(try test.open() as? PostgresStore)
        let job = try store.submit(["/videos/a.mp4"])[0]
        let (_, fence) = try #require(try store.claimJob(worker: "w1", lease: 30))
        #expect(try store.releaseJob(fence) && store.job(job.id)?.state == .queued)
        for _ in 2...maximumJobAttempts {
            let claimed = try store.claimJob(worker: "dies", lease: 0.2)
            #expect(claimed != nil)
            Thread.sleep(forTimeInterval: 0.3)
        }
        let none = try store.claimJob(worker: "w2", lease: 30)
        #expect(none == nil)
        let given = try #require(try store.job(job.id))
        #expect(given.state == .failed && given.error?.contains("3 times") == true, "\(given)")
    }

    // Eight workers (each its own connection) claim at the same moment: eight different jobs,
    // none waiting for another (SKIP LOCKED).
    @Test func concurrentClaimsTakeDifferentJobs() throws {
        let test = try TestStore(.postgres)
        let store = try #require(try test.open() as? PostgresStore)
        let submitted = Set(try store.submit((0..<10).map { "/videos/\($0).mp4" }).map(\.id))
        let workers = try (0..<8).map { _ in try #require(try test.open() as? PostgresStore) }
        let claimed = Mutex<[Int64]>([])
        DispatchQueue.concurrentPerform(iterations: workers.count) { i in
            if let (job, _) = try? workers[i].claimJob(worker: "w\(i)", lease: 30) { claimed.withLock { $0.append(job.id) } }
        }
        let ids = claimed.withLock { $0 }
        #expect(ids.count == 8 && Set(ids).count == 8 && Set(ids).isSubset(of: submitted), "\(ids)")
    }
}
