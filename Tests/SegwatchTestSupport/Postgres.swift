import Foundation

/// The PostgreSQL server the store's tests use: `SEGWATCH_TEST_POSTGRES`, a URL of a role that
/// may create databases. `.ci/run` starts a private one on loopback (`.ci/postgres`) and sets it;
/// without it, the PostgreSQL tests fail and say so (they are never skipped).
public enum TestPostgres {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "SEGWATCH_TEST_POSTGRES is not set: start a server with `.ci/postgres start DIR` and export the URL it prints (.ci/run does)"
        }
    }

    public static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SEGWATCH_TEST_POSTGRES"], !url.isEmpty else { throw Missing() }
        return url
    }

    /// A new, empty database on the server; its URL.
    public static func newDatabase() throws -> String {
        let server = try serverURL()
        let name = "segwatch_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try psql(server, "CREATE DATABASE \(name)")
        return databaseURL(server, name)
    }

    /// Drops the database of `url` (its connections closed first).
    public static func dropDatabase(_ url: String) {
        guard let server = try? serverURL(), let name = URLComponents(string: url)?.path.dropFirst(), !name.isEmpty else { return }
        _ = try? psql(server, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// `url` with its database replaced by `name`.
    public static func databaseURL(_ url: String, _ name: String) -> String {
        var components = URLComponents(string: url)!
        components.path = "/" + name
        return components.string!
    }

    /// Runs `sql` with psql on `url`; what it printed (unaligned, tuples only).
    @discardableResult
    public static func psql(_ url: String, _ sql: String) throws -> String {
        let result = try runProcess("/usr/bin/env", ["psql", url, "-v", "ON_ERROR_STOP=1", "-tAc", sql], timeout: 60)
        guard result.status == 0 else {
            throw PSQLFailed(sql: sql, message: result.errorOutput)
        }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public struct PSQLFailed: Error, CustomStringConvertible {
        public var sql: String
        public var message: String
        public var description: String { "psql failed on \(sql): \(message)" }

        public init(sql: String, message: String) {
            (self.sql, self.message) = (sql, message)
        }
    }
}
