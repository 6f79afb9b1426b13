// Offline footage at scale: files queued in the fleet's PostgreSQL (`segwatch submit`), claimed by
// any number of workers on any hosts (`segwatch worker`).
//
// A worker claims the oldest free job with `FOR UPDATE SKIP LOCKED` (workers never wait on each
// other) and holds it by a lease it renews; a job whose lease ran out (its worker died) is free
// again. Each claim is a new attempt: it deletes what earlier attempts wrote, and every write of
// the attempt checks, in its own transaction, that the attempt still holds the job (`JobFence`),
// so a file's results are written exactly once even when a worker that lost its lease goes on.
// Times are the database's clock, the one clock every host shares.

import PostgresNIO

/// One attempt at a job: writes carry it, and the store takes them only while it holds the job.
public struct JobFence: Sendable, Equatable {
    public var job: Int64
    public var attempt: Int

    public init(job: Int64, attempt: Int) {
        (self.job, self.attempt) = (job, attempt)
    }
}

/// A queued file and where its work stands.
public struct Job: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        case queued, running, done, failed
    }

    public var id: Int64
    public var file: String
    /// The camera its tracks are stored under: the file's name and the job's id.
    public var camera: String
    public var state: State
    /// Milliseconds since 1970 (the database's clock).
    public var submitted: Int64
    public var attempts: Int
    public var worker: String?
    public var leaseUntil: Int64?
    public var started: Int64?
    public var finished: Int64?
    /// Frames analyzed and tracks stored, once done.
    public var frames: Int64
    public var tracks: Int64
    public var error: String?
}

/// A job is given up after this many attempts whose workers stopped holding it (a file that
/// kills every worker that reads it).
public let maximumJobAttempts = 3

/// The database's clock in milliseconds since 1970.
private let databaseNow = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint"

extension PostgresStore {
    /// Queues `files` (paths as the workers will open them), in order.
    public func submit(_ files: [String]) throws(StoreError) -> [Job] {
        try transaction("queue jobs") { session in
            try files.map { file in
                let id = try session.rows("""
                    INSERT INTO jobs (file, camera, state, submitted, attempts, frames, tracks) VALUES (?, '', 'queued', \(databaseNow), 0, 0, 0)
                    RETURNING id
                    """, [file])[0].decode(Int64.self)
                try session.execute("UPDATE jobs SET camera = ? WHERE id = ?", [jobCamera(file: file, id: id), id])
                return try job(session, id)!
            }
        }
    }

    /// Claims the oldest job that is queued or whose lease ran out, for `lease` seconds, as
    /// `worker`; what an earlier attempt at it wrote is deleted. Nil when there is none.
    public func claimJob(worker: String, lease: Double) throws(StoreError) -> (job: Job, fence: JobFence)? {
        try transaction("claim a job") { session in
            try session.execute("""
                UPDATE jobs SET state = 'failed', finished = \(databaseNow),
                    error = 'given up: its worker stopped holding it ' || attempts || ' times'
                WHERE state = 'running' AND lease_until < \(databaseNow) AND attempts >= ?
                """, [maximumJobAttempts])
            guard let claimed = try session.rows("""
                WITH next AS (
                    SELECT id FROM jobs WHERE state = 'queued' OR (state = 'running' AND lease_until < \(databaseNow))
                    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                UPDATE jobs SET state = 'running', worker = ?, attempts = jobs.attempts + 1, lease_until = \(databaseNow) + ?,
                    started = \(databaseNow), error = NULL
                FROM next WHERE jobs.id = next.id
                RETURNING jobs.id
                """, [worker, Int64(lease * 1000)]).first else { return nil }
            let id = try claimed.decode(Int64.self)
            // Earlier attempts' runs, with their tracks (their labels, boxes and thumbnails
            // cascade) and their camera's stuff summaries.
            try session.execute("DELETE FROM tracks WHERE run_id IN (SELECT id FROM runs WHERE job_id = ?)", [id])
            try session.execute("""
                DELETE FROM stuff_minutes WHERE camera_id IN (SELECT camera_id FROM runs WHERE job_id = ?)
                """, [id])
            try session.execute("DELETE FROM runs WHERE job_id = ?", [id])
            let job = try job(session, id)!
            return (job, JobFence(job: id, attempt: job.attempts))
        }
    }

    /// Extends the lease of `fence`'s attempt by `lease` seconds from now; false when the attempt
    /// no longer holds the job (its lease ran out and another worker claimed it).
    public func renewLease(_ fence: JobFence, lease: Double) throws(StoreError) -> Bool {
        try transaction("renew a job's lease") { session in
            try session.execute("""
                UPDATE jobs SET lease_until = \(databaseNow) + ? WHERE id = ? AND attempts = ? AND state = 'running'
                """, [Int64(lease * 1000), fence.job, fence.attempt]) == 1
        }
    }

    /// Marks `fence`'s job done (or failed, with `error`), with the frames analyzed and the
    /// tracks its runs stored; false when the attempt no longer holds the job.
    public func finishJob(_ fence: JobFence, frames: Int, error: String? = nil) throws(StoreError) -> Bool {
        try transaction("finish a job") { session in
            try session.execute("""
                UPDATE jobs SET state = ?, finished = \(databaseNow), lease_until = NULL, frames = ?, error = ?,
                    tracks = (SELECT COUNT(*) FROM tracks WHERE run_id IN (SELECT id FROM runs WHERE job_id = ?))
                WHERE id = ? AND attempts = ? AND state = 'running'
                """, [error == nil ? "done" : "failed", frames, error, fence.job, fence.job, fence.attempt]) == 1
        }
    }

    /// Gives `fence`'s job back to the queue (its worker was stopped); false when the attempt no
    /// longer holds it.
    public func releaseJob(_ fence: JobFence) throws(StoreError) -> Bool {
        try transaction("give a job back") { session in
            try session.execute("""
                UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL WHERE id = ? AND attempts = ? AND state = 'running'
                """, [fence.job, fence.attempt]) == 1
        }
    }

    /// The job of this id, if there is one.
    public func job(_ id: Int64) throws(StoreError) -> Job? {
        try transaction("read a job") { session in try job(session, id) }
    }

    /// The jobs, oldest first (only those in `states`, when given).
    public func jobs(states: [Job.State] = []) throws(StoreError) -> [Job] {
        try transaction("read jobs") { session in
            try session.rows("SELECT \(jobColumns) FROM jobs ORDER BY id").map(decodeJob).filter { states.isEmpty || states.contains($0.state) }
        }
    }

    /// Fails the transaction unless `fence`'s attempt still holds its job; the job's row stays
    /// locked until it commits, so no claim takes it over in between.
    func holdJob(_ session: PostgresSession, _ fence: JobFence) throws {
        guard try !session.rows("SELECT 1 FROM jobs WHERE id = ? AND attempts = ? AND state = 'running' FOR SHARE",
                                [fence.job, fence.attempt]).isEmpty else {
            throw StoreError.mismatch(store: location, reason: "job \(fence.job) is no longer held by this worker (attempt \(fence.attempt)): its lease ran out")
        }
    }

    private func job(_ session: PostgresSession, _ id: Int64) throws -> Job? {
        try session.rows("SELECT \(jobColumns) FROM jobs WHERE id = ?", [id]).first.map(decodeJob)
    }
}

private let jobColumns = "id, file, camera, state, submitted, attempts, worker, lease_until, started, finished, frames, tracks, error"

/// A row of `jobColumns`.
private func decodeJob(_ row: PostgresRow) throws -> Job {
    let c = row.makeRandomAccess()
    return Job(id: try c[0].decode(Int64.self), file: try c[1].decode(String.self), camera: try c[2].decode(String.self),
               state: Job.State(rawValue: try c[3].decode(String.self)) ?? .failed, submitted: try c[4].decode(Int64.self),
               attempts: try c[5].decode(Int.self), worker: try c[6].decode(String?.self), leaseUntil: try c[7].decode(Int64?.self),
               started: try c[8].decode(Int64?.self), finished: try c[9].decode(Int64?.self), frames: try c[10].decode(Int64.self),
               tracks: try c[11].decode(Int64.self), error: try c[12].decode(String?.self))
}

/// The camera a job's tracks are stored under: its file's name and its id, so that two jobs of
/// files of the same name never share track ids.
func jobCamera(file: String, id: Int64) -> String {
    let name = file.split(separator: "/").last.map(String.init) ?? file
    return "\(name) (job \(id))"
}
