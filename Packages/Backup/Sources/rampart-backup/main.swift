// `rampart-backup`: dumps every service database, encrypts each dump, writes an authenticated
// manifest and rotates (OPS-2). Run it daily (a Kubernetes CronJob, a systemd timer).
//
//   rampart-backup            one backup under RAMPART_BACKUP_DIR, then rotation
//
// Configuration (environment): RAMPART_BACKUP_DIR, RAMPART_BACKUP_KEYS (<id>:<base64 of 32
// bytes>[,…], the first seals), RAMPART_BACKUP_KEEP_DAYS (30), RAMPART_BACKUP_DATABASES (every
// service database), RAMPART_BACKUP_POSTGRES_HOST/PORT/USER/PASSWORD/TLS/TLS_CA.
// Exit 0: done; 1: the backup failed (nothing half-written is left); 2: configuration.
import BackupKit
import Foundation

func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("rampart-backup: \(message)\n".utf8))
    exit(status)
}

if CommandLine.arguments.count > 1 {
    fail("takes no arguments; it is configured by RAMPART_BACKUP_* variables", status: 2)
}
let settings: BackupSettings
do {
    settings = try BackupSettings.fromEnvironment(ProcessInfo.processInfo.environment)
} catch {
    fail("\(error)", status: 2)
}
do {
    let folder = try Backup(settings: settings).run()
    print("rampart-backup: \(folder.path) (\(settings.databases.joined(separator: ", ")); key \(settings.keys.currentKeyID))")
} catch {
    fail("\(error)", status: 1)
}
