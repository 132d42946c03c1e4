import Foundation

/// How the backup tools reach PostgreSQL: as a superuser (or a role that may read every service
/// database and create databases), through PostgreSQL's own client tools.
public struct PostgresConnection: Sendable {
    /// libpq's `sslmode` values the tools accept.
    public enum SSLMode: String, CaseIterable, Sendable {
        case disable, prefer, require
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var sslMode: SSLMode
    public var sslRootCertificate: String?

    public init(host: String, port: Int, user: String, password: String? = nil, sslMode: SSLMode = .prefer, sslRootCertificate: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.sslMode = sslMode
        self.sslRootCertificate = sslRootCertificate
    }

    /// A database or role name the tools put into SQL and file names: lowercase letters, digits
    /// and `_`, not starting with a digit (every Rampart database and role is one). Nothing else
    /// is accepted, so such a name never needs quoting beyond `"…"` and `'…'`.
    public static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.utf8.first, (1...63).contains(name.utf8.count), !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return false
        }
        return name.utf8.allSatisfy {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_")
        }
    }

    /// libpq's variables for the tools; the password never appears on a command line.
    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["PGHOST"] = host
        environment["PGPORT"] = String(port)
        environment["PGUSER"] = user
        environment["PGSSLMODE"] = sslMode.rawValue
        environment["PGCONNECT_TIMEOUT"] = "10"
        if let password { environment["PGPASSWORD"] = password } else { environment.removeValue(forKey: "PGPASSWORD") }
        if let sslRootCertificate { environment["PGSSLROOTCERT"] = sslRootCertificate }
        return environment
    }
}

public struct BackupError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// pg_dump, pg_restore and psql, run as child processes.
struct PostgresTools {
    let connection: PostgresConnection

    /// One value per row of `sql`'s first column, run in `database`.
    func query(_ sql: String, database: String = "postgres") throws -> [String] {
        let output = try run("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql])
        return String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// Runs `tool` to its end; its standard output. Standard error goes to a file, not a pipe, so
    /// a chatty tool cannot block on a full pipe while we wait for it.
    @discardableResult
    func run(_ tool: String, _ arguments: [String]) throws -> Data {
        try withProcess(tool, arguments) { process, output in
            try process.run()
            let data = output.readDataToEndOfFile()
            process.waitUntilExit()
            return data
        }
    }

    /// Runs `tool` and hands its standard output to `consume` piece by piece as it comes.
    func stream(_ tool: String, _ arguments: [String], _ consume: ([UInt8]) throws -> Void) throws {
        try withProcess(tool, arguments) { process, output in
            try process.run()
            do {
                while let piece = try output.read(upToCount: 1 << 20), !piece.isEmpty { try consume(Array(piece)) }
            } catch {
                process.terminate()
                process.waitUntilExit()
                throw error
            }
            process.waitUntilExit()
        }
    }

    private func withProcess<T>(_ tool: String, _ arguments: [String], _ body: (Process, FileHandle) throws -> T) throws -> T {
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-\(tool)-\(UUID().uuidString).err")
        guard FileManager.default.createFile(atPath: errors.path, contents: nil, attributes: [.posixPermissions: 0o600]),
            let errorHandle = FileHandle(forWritingAtPath: errors.path)
        else { throw BackupError("cannot create a temporary file for \(tool)'s messages") }
        defer {
            try? errorHandle.close()
            try? FileManager.default.removeItem(at: errors)
        }
        let process = Process()
        process.executableURL = try Self.find(tool)
        process.arguments = arguments
        process.environment = connection.environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = errorHandle
        process.standardInput = FileHandle.nullDevice
        let result = try body(process, output.fileHandleForReading)
        guard process.terminationStatus == 0 else {
            let message = (try? String(contentsOf: errors, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            throw BackupError("\(tool) \(arguments.last ?? "") failed (status \(process.terminationStatus)): \(message)")
        }
        return result
    }

    static func find(_ tool: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(tool)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw BackupError("\(tool) is not installed (Debian: postgresql-client)")
    }
}
