import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Child processes for tests. Foundation's `Process` on Linux misbehaves when many threads use
/// it at once (seen while suites ran in parallel: a crash in `run()`'s memcpy, a trap reading a
/// pipe on EINTR, a crash in the run loop `waitUntilExit()` spins): long-lived servers are
/// launched one at a time through `launch`, and short commands run with `posix_spawn` and
/// `waitpid`, their output written to files.
public enum ChildProcess {
    private static let launching = NSLock()

    public static func launch(_ process: Process) throws {
        try launching.withLock { try process.run() }
    }

    /// As `run`, waiting on a thread of its own: a long command (a browser journey) must not
    /// hold one of the few threads Swift's concurrency runs the services under test on.
    public static func runAside(
        _ executable: URL,
        _ arguments: [String],
        environment: [String: String] = [:]
    ) async throws -> (status: Int32, output: String, errors: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try run(executable, arguments, environment: environment) }) }.start()
        }
    }

    /// Runs `executable` to its end, with this process's environment plus `environment`; its exit
    /// status (128 + the signal if one ended it), standard output and standard error.
    public static func run(
        _ executable: URL,
        _ arguments: [String],
        environment: [String: String] = [:]
    ) throws -> (status: Int32, output: String, errors: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outputPath = folder.appendingPathComponent("out").path
        let errorPath = folder.appendingPathComponent("err").path

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let variables = ProcessInfo.processInfo.environment.merging(environment) { _, given in given }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }

        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable.path, &actions, nil, argv, envp)
        guard spawned == 0 else { throw TestInfrastructureError("cannot start \(executable.path): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw TestInfrastructureError("waitpid failed: \(String(cString: strerror(errno)))") }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import.
        let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (
            exitStatus,
            (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
            (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        )
    }
}
