import Foundation
import SegwatchTestSupport
import Testing

@Suite struct WorkerCommandTests {
    private func json(_ result: ProcessResult) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(result.output.utf8))
    }

    private func jobs(_ store: String) throws -> [[String: Any]] {
        let result = try runProcess(segwatch, ["jobs", "--store", store, "--json"], timeout: 60)
        #expect(result.status == 0, "\(result.errorOutput)")
        return try json(result) as? [[String: Any]] ?? []
    }

    private func worker(_ store: String, _ name: String, _ folder: TemporaryFolder) throws -> BackgroundProcess {
        try BackgroundProcess(segwatch, ["worker", "--store", store, "--sam", RunCommandTests.sam, "--clip", RunCommandTests.clip,
                                         "--label", "car", "--label", "person", "--fps", "2", "--threads", "1", "--lease", "3", "--poll", "0.3",
                                         "--exit-when-idle", "--name", name] + RunCommandTests.generator,
                              stdout: folder.path("\(name).out"), stderr: folder.path("\(name).err"))
    }

    // Three files queued; a worker is killed (SIGKILL) in the middle of the first, after it stored
    // some of its tracks; two more workers share the queue. Every job ends done, the killed one
    // on its second attempt; each job has exactly one run, its tracks are that run's only, and
    // they are as many as the same file gave the other jobs (nothing of the killed attempt is
    // left); the two workers took different jobs at once.
    @Test func aKilledWorkersJobCompletesOnce() throws {
        let folder = try TemporaryFolder()
        let store = try TestPostgres.newDatabase()
        defer { folder.remove(); TestPostgres.dropDatabase(store) }
        let submit = try runProcess(segwatch, ["submit", RunCommandTests.video, RunCommandTests.video, RunCommandTests.video,
                                               "--store", store, "--json"], timeout: 60)
        #expect(submit.status == 0, "\(submit.errorOutput)")
        let ids = (try json(submit) as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
        #expect(ids.count == 3)
        let first = ids[0]

        let doomed = try worker(store, "doomed", folder)
        let started = eventually(120, every: 0.2) {
            let stored = try? TestPostgres.psql(store, "SELECT count(*) FROM tracks JOIN runs ON runs.id = tracks.run_id WHERE runs.job_id = \(first)")
            return Int(stored ?? "") ?? 0 > 0
        }
        #expect(started, "\(doomed.errorOutput)")
        doomed.signal(SIGKILL)
        _ = doomed.wait(timeout: 30)
        #expect(try jobs(store).first?["state"] as? String == "running")

        let workers = try ["b", "c"].map { try worker(store, $0, folder) }
        for worker in workers {
            #expect(worker.wait(timeout: 400) == 0, "\(worker.errorOutput)")
        }
        let finished = try jobs(store)
        #expect(finished.map { $0["state"] as? String } == ["done", "done", "done"], "\(finished)")
        #expect(finished.map { $0["attempts"] as? Int } == [2, 1, 1])
        #expect(Set(finished.compactMap { $0["worker"] as? String }) == ["b", "c"])
        #expect(finished[1]["worker"] as? String != finished[2]["worker"] as? String)
        let runs = try TestPostgres.psql(store, "SELECT job_id || ':' || count(*) FROM runs GROUP BY job_id ORDER BY job_id")
        #expect(runs == ids.map { "\($0):1" }.joined(separator: "\n"))
        let strays = try TestPostgres.psql(store, """
            SELECT count(*) FROM tracks JOIN runs ON runs.id = tracks.run_id JOIN cameras ON cameras.id = tracks.camera_id
            JOIN jobs ON jobs.id = runs.job_id WHERE cameras.name <> jobs.camera
            """)
        #expect(strays == "0")
        let tracks = finished.map { $0["tracks"] as? Int ?? -1 }
        let stored = try ids.map { id in
            Int(try TestPostgres.psql(store, "SELECT count(*) FROM tracks JOIN runs ON runs.id = tracks.run_id WHERE runs.job_id = \(id)")) ?? -1
        }
        #expect(tracks == stored && tracks[0] > 0 && Set(tracks).count == 1, "\(tracks) vs \(stored)")
        #expect(finished.allSatisfy { $0["frames"] as? Int == finished[1]["frames"] as? Int })

        // Every job's tracks are found by search, under the job's camera.
        let search = try runProcess(segwatch, ["search", "a car", "--store", store, "--limit", "100", "--json"], timeout: 120)
        let cameras = Set((try json(search) as? [[String: Any]] ?? []).compactMap { $0["camera"] as? String })
        #expect(cameras == Set(finished.compactMap { $0["camera"] as? String }), "\(search.errorOutput)")
    }

    // What the queue refuses: a SQLite store, a file that is not there; a worker's unreadable
    // file fails its job with the reason, and the worker goes on.
    @Test func badInputsAreNamed() throws {
        let folder = try TemporaryFolder()
        let store = try TestPostgres.newDatabase()
        defer { folder.remove(); TestPostgres.dropDatabase(store) }
        let sqlite = try runProcess(segwatch, ["submit", RunCommandTests.video, "--store", folder.path("s.sqlite")], timeout: 60)
        #expect(sqlite.status != 0 && sqlite.errorOutput.contains("PostgreSQL"), "\(sqlite.errorOutput)")
        let missing = try runProcess(segwatch, ["submit", folder.path("nothing.mp4"), "--store", store], timeout: 60)
        #expect(missing.status != 0 && missing.errorOutput.contains("nothing.mp4: no such file"), "\(missing.errorOutput)")

        try Data("not a video".utf8).write(to: URL(fileURLWithPath: folder.path("junk.mp4")))
        let queued = try runProcess(segwatch, ["submit", folder.path("junk.mp4"), "--store", store], timeout: 60)
        #expect(queued.status == 0, "\(queued.errorOutput)")
        let worker = try worker(store, "w", folder)
        #expect(worker.wait(timeout: 120) == 0, "\(worker.errorOutput)")
        let job = try #require(try jobs(store).first)
        #expect(job["state"] as? String == "failed" && (job["error"] as? String)?.contains("junk.mp4") == true, "\(job)")
    }
}
