import Foundation

/// Child processes for tests. Foundation's `Process.run()` on Linux is not safe to call from
/// several threads at once (seen: a crash in its memcpy while suites ran in parallel), and
/// reading a pipe to its end traps on EINTR (a SIGCHLD from another child): launches are
/// serialised here, and output goes through files, not pipes.
public enum ChildProcess {
    private static let launching = NSLock()

    public static func launch(_ process: Process) throws {
        try launching.withLock { try process.run() }
    }

    /// Runs `executable` to its end; its exit status, standard output and standard error.
    public static func run(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outputFile = folder.appendingPathComponent("out")
        let errorFile = folder.appendingPathComponent("err")
        FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputFile)
        let errors = try FileHandle(forWritingTo: errorFile)
        defer {
            try? output.close()
            try? errors.close()
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = errors
        try launch(process)
        process.waitUntilExit()
        return (
            process.terminationStatus,
            (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "",
            (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
        )
    }
}
