import ArgumentParser
import Foundation
import SegwatchService
import SegwatchStore

/// The fleet's job queue, which lives in a PostgreSQL store.
func openJobQueue(_ location: String) throws -> PostgresStore {
    guard isPostgresURL(location) else {
        throw CommandError("--store \(location): the job queue lives in a PostgreSQL store (postgres://USER:PASSWORD@HOST/DATABASE)")
    }
    return try PostgresStore(url: location)
}

/// `segwatch submit`: files queued for the fleet's workers.
struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue video files for 'segwatch worker' on any host.",
        discussion: """
            Each file becomes a job in the PostgreSQL store; a worker claims it, analyzes the \
            file and keeps its tracks in the store under the camera '<file name> (job N)', \
            searchable with 'segwatch search' as any camera's. Paths are stored absolute, as \
            every worker must find them (shared storage). 'segwatch jobs' lists the queue.
            """)

    @Argument(help: "Video files to analyze.")
    var files: [String]

    @Option(help: ArgumentHelp("The fleet's store.", valueName: "postgres://..."))
    var store: String

    @Flag(help: "Print the jobs as a JSON array.")
    var json = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give the video files to queue") }
    }

    func run() throws {
        try runReporting {
            let paths = try files.map { file -> String in
                let path = URL(fileURLWithPath: file).standardizedFileURL.path
                var directory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &directory), !directory.boolValue else {
                    throw CommandError("\(file): no such file")
                }
                return path
            }
            let jobs = try openJobQueue(store).submit(paths)
            if json {
                print(try jsonText(jobs.map(jobObject)))
            } else {
                for job in jobs { print("job \(job.id): \(job.file)") }
            }
        }
    }
}

/// `segwatch jobs`: the queue and where each job stands.
struct Jobs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the jobs queued with 'segwatch submit' and where each stands.")

    @Option(help: ArgumentHelp("The fleet's store.", valueName: "postgres://..."))
    var store: String

    @Option(help: "Only jobs in this state: queued, running, done or failed. Repeatable.")
    var state: [String] = []

    @Flag(help: "Print the jobs as a JSON array.")
    var json = false

    func validate() throws {
        if let bad = state.first(where: { Job.State(rawValue: $0) == nil }) {
            throw ValidationError("--state '\(bad)' is not a state: queued, running, done or failed")
        }
    }

    func run() throws {
        try runReporting {
            let jobs = try openJobQueue(store).jobs(states: state.compactMap(Job.State.init))
            if json {
                print(try jsonText(jobs.map(jobObject)))
                return
            }
            for job in jobs {
                var line = "job \(job.id)  \(job.state.rawValue)  \(job.file)"
                switch job.state {
                case .running: line += "  worker \(job.worker ?? "?"), attempt \(job.attempts)"
                case .done: line += "  \(job.frames) frames, \(job.tracks) tracks"
                case .failed: line += "  \(job.error ?? "")"
                case .queued: break
                }
                print(line)
            }
        }
    }
}

/// A job as the commands print it in JSON.
func jobObject(_ job: Job) -> [String: Any] {
    func time(_ milliseconds: Int64?) -> Any { milliseconds.map { isoTime(Date(timeIntervalSince1970: Double($0) / 1000)) } ?? NSNull() }
    return ["id": job.id, "file": job.file, "camera": job.camera, "state": job.state.rawValue, "submitted": time(job.submitted),
            "attempts": job.attempts, "worker": job.worker ?? NSNull(), "started": time(job.started), "finished": time(job.finished),
            "frames": job.frames, "tracks": job.tracks, "error": job.error ?? NSNull()]
}
