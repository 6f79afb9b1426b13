import ArgumentParser
import Foundation
import Logging
import SegwatchMedia
import SegwatchPipeline
import SegwatchService
import SegwatchStore

/// `segwatch worker`: analyzes the files queued with `submit`, into the fleet's store.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Analyze the video files queued with 'segwatch submit', on any number of hosts.",
        discussion: """
            The worker claims the oldest queued job (workers never wait on each other), \
            analyzes its file as 'segwatch run' would, with these models and options, and keeps \
            the tracks in the store under the job's camera. It holds the job by a lease it renews \
            every third of --lease; if the worker dies, the job is claimed again once the lease \
            runs out, and that attempt replaces whatever the dead one had stored, so each file's \
            results are there exactly once. A job whose workers die three times is given up. \
            A file that cannot be read fails its job, with the reason in 'segwatch jobs'.

            SIGINT or SIGTERM finishes the frame in flight and gives the job back to the queue.
            """)

    @Option(help: ArgumentHelp("The fleet's store.", valueName: "postgres://..."))
    var store: String

    @OptionGroup var models: LabelerArguments

    @OptionGroup(title: "Vocabulary") var vocabulary: VocabularyOptions

    @OptionGroup var analysis: AnalysisOptions

    @Option(help: "Seconds a claimed job is held without renewal: a dead worker's job waits this long before another takes it.")
    var lease = 60.0

    @Option(help: "Seconds between looks at an empty queue.")
    var poll = 2.0

    @Flag(help: "Exit once no job is left to claim, rather than wait for more.")
    var exitWhenIdle = false

    @Option(help: "How this worker is named in 'segwatch jobs' (default: host:pid).")
    var name: String?

    func validate() throws {
        try models.requireModels()
        guard !vocabulary.isEmpty else { throw ValidationError("give --label (repeatable) or --vocab FILE") }
        guard lease >= 1, lease.isFinite else { throw ValidationError("--lease must be at least 1 second, not \(lease)") }
        guard poll > 0, poll.isFinite else { throw ValidationError("--poll must be positive seconds, not \(poll)") }
    }

    func run() async throws {
        ShutdownSignal.shared.install(finalizing: true)
        try await runReporting {
            let queue = try openJobQueue(store)
            let words = try models.words(vocabulary)
            let names = words.names
            let analyzerOptions = try analysis.analyzerOptions(names: names)
            let labeler = try models.labeler(words, vocabulary: vocabulary)
            var record = try RunRecord(camera: "", clip: models.clip!, head: models.head, labels: labeler.classifier.labels,
                                       templates: words.templates, digestMemo: vocabulary.cacheStore()?.digestMemo)
            var settings = JobWorker.Settings(name: name ?? JobWorker.Settings.defaultName)
            (settings.lease, settings.poll, settings.exitWhenIdle) = (lease, poll, exitWhenIdle)
            let logger = Logger(label: "segwatch.worker")
            let worker = JobWorker(store: queue, settings: settings, logger: logger)
            ShutdownSignal.shared.onSignal { worker.stop() }

            var done = 0, failed = 0
            await worker.run(analyze: { job, fence, onStop in
                let decoder = try VideoDecoder(InputSpec(job.file), options: DecodeOptions(layout: .rgb24))
                var stream = StreamSettings(name: job.camera)
                (stream.fps, stream.maxFrames) = (analysis.fps, analysis.maxFrames)
                (record.camera, record.started, record.job) = (job.camera, storeTime(Date()), fence)
                let runner = StreamRunner(input: .file(decoder), analyzer: try VideoAnalyzer(labeler: labeler, options: analyzerOptions),
                                          names: names, settings: stream, events: EventLog(sinks: [FleetEventFeed(store: queue)]), video: nil,
                                          store: try StoreSink(store: queue, run: record), logger: logger)
                onStop { runner.stop() }
                return try await runner.run().analyzed
            }, report: { outcome in
                let job = outcome.job
                if outcome.released {
                    printError("job \(job.id): given back to the queue" + (outcome.error.map { " (\($0))" } ?? ""))
                } else if outcome.lost {
                    printError("job \(job.id): its lease ran out; another worker has it" + (outcome.error.map { " (\($0))" } ?? ""))
                } else if let error = outcome.error {
                    failed += 1
                    printError("job \(job.id) failed: \(error)")
                } else {
                    done += 1
                    printError("job \(job.id) done: \(job.file), \(job.frames) frames, \(job.tracks) tracks")
                }
            })
            printError("\(done) jobs done, \(failed) failed")
        }
    }
}
