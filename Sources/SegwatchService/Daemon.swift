import Foundation
import Logging
import Metrics
import Prometheus
import SegwatchBackends
import SegwatchTensor

/// `segwatch serve` from a loaded config to its end: the HTTP API first (so `/healthz` answers
/// and `/readyz` says "loading" while the models load), then the models and the cameras, a
/// reload on SIGHUP, and on the first shutdown signal every camera finished, the event streams
/// closed and the API stopped.
public enum Daemon {
    /// Runs until `ShutdownSignal.shared` fires; true if it stopped for a failure of its own
    /// (the API could not serve). Bootstraps swift-metrics with the Prometheus registry the API
    /// exports, so call it once per process.
    public static func run(config: ServiceConfig, logger: Logger) async throws -> Bool {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let hub = EventHub(), handle = ServiceHandle()
        let api = try APIServer(http: config.http, registry: registry, hub: hub, handle: handle, logger: logger)
        let http = config.http
        let server = Task {
            do {
                try await api.run { logger.info("HTTP API on \(http.host):\($0)") }
            } catch {
                logger.error("the HTTP API cannot serve \(http.listen): \(error)")
                ShutdownSignal.shared.stop()
            }
        }

        let sam = try ModelCache.standard.resolve(config.engine.sam, kind: .sam)
        let clip = try ModelCache.standard.resolve(config.engine.clip, kind: .clip)
        let backend = try (config.engine.backend ?? BackendChoice.fromEnvironment())
            .open(threads: config.engine.threads, device: config.engine.device,
                  precision: config.engine.precision ?? Precision.fromEnvironment()) { logger.warning("\($0)") }
        logger.info("models run on \(backend.name)")
        let dino = try config.engine.dino.map { try ModelCache.standard.resolve($0, kind: .dino) }
        let models = try ModelSet(sam: sam, clip: clip, head: config.engine.head, dino: dino,
                                  backend: backend, warn: { logger.warning("\($0)") })
        let service = try Service(config: config, models: models, hub: hub, logger: logger)
        handle.service = service
        ShutdownSignal.shared.onSignal { service.stop() }
        let hangUp = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangUp.setEventHandler { service.requestReload() }
        hangUp.resume()
        defer { hangUp.cancel() }
        await service.run()
        hub.close()
        await api.shutdown()
        await server.value
        return ShutdownSignal.shared.failed
    }
}
