// `rampart-restore`: verifies a backup `rampart-backup` made and restores it into a cluster
// whose service databases are missing or empty (OPS-2).
//
//   rampart-restore [--verify-only] <backup folder | latest>
//
// Every file is checked against the authenticated manifest and decrypted before anything is
// written; a changed, cut-off or incomplete backup is refused whole. The service roles must
// exist (the PostgreSQL operator or `make run` creates them with their passwords). Same
// configuration as rampart-backup. Exit 0: restored (or verified); 1: refused or failed; 2: usage.
import BackupKit
import Foundation

func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("rampart-restore: \(message)\n".utf8))
    if status == 2 { FileHandle.standardError.write(Data("usage: rampart-restore [--verify-only] <backup folder | latest>\n".utf8)) }
    exit(status)
}

var arguments = CommandLine.arguments.dropFirst()
let verifyOnly = arguments.first == "--verify-only"
if verifyOnly { arguments = arguments.dropFirst() }
guard arguments.count == 1, let target = arguments.first, !target.hasPrefix("-") else { fail("name one backup folder, or latest", status: 2) }
let settings: BackupSettings
do {
    settings = try BackupSettings.fromEnvironment(ProcessInfo.processInfo.environment)
} catch {
    fail("\(error)", status: 2)
}
do {
    let restore = Restore(settings: settings)
    let folder = target == "latest" ? try restore.latest() : URL(fileURLWithPath: target)
    let manifest = verifyOnly ? try restore.verify(folder) : try restore.run(folder)
    let names = manifest.databases.map(\.name).joined(separator: ", ")
    print("rampart-restore: \(folder.lastPathComponent) of \(manifest.createdAt) \(verifyOnly ? "verified" : "restored"): \(names)")
} catch {
    fail("\(error)", status: 1)
}
