import Foundation
import SodiumKit

/// One database dump, encrypted as it streams out of pg_dump:
///
///     "RAMPART-BACKUP-1" (16 bytes) | secretstream header (24) | frames…
///     frame: length of the sealed chunk (4 bytes, big-endian) | sealed chunk
///
/// Each chunk holds up to 1 MiB of the dump and is authenticated together with the file's magic
/// and its database name, so a dump cannot pass for another database's; the last chunk carries
/// the final tag, so a cut-off file is refused rather than restored in part.
enum SealedDump {
    static let magic = Array("RAMPART-BACKUP-1".utf8)
    static let chunkSize = 1 << 20

    static func associatedData(database: String) -> [UInt8] {
        magic + Array(database.utf8)
    }

    /// Writes a sealed dump to `path` (created, mode 0600) from the pieces it is given.
    final class Writer {
        private var sealer: SecretStream.Sealer
        private let file: FileHandle
        private let associatedData: [UInt8]
        private var pending: [UInt8] = []
        private var hasher = SHA256Hasher()
        private(set) var byteCount: Int64 = 0

        init(path: String, key: SecretKey, database: String) throws {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
                let file = FileHandle(forWritingAtPath: path)
            else { throw BackupError("cannot create \(path)") }
            self.file = file
            sealer = try SecretStream.Sealer(key: key)
            associatedData = SealedDump.associatedData(database: database)
            try emit(SealedDump.magic + sealer.header)
        }

        func write(_ bytes: [UInt8]) throws {
            pending += bytes
            // A full chunk is sealed only once more follows it: the last chunk must be the final one.
            while pending.count > SealedDump.chunkSize {
                try seal(Array(pending.prefix(SealedDump.chunkSize)), isFinal: false)
                pending.removeFirst(SealedDump.chunkSize)
            }
        }

        /// Seals what is left as the final chunk; the file's size and SHA-256 (hex).
        func finish() throws -> (bytes: Int64, sha256: String) {
            try seal(pending, isFinal: true)
            try file.synchronize()
            try file.close()
            return (byteCount, hexString(hasher.finish()))
        }

        private func seal(_ chunk: [UInt8], isFinal: Bool) throws {
            let sealed = sealer.seal(chunk, associatedData: associatedData, isFinal: isFinal)
            let length = UInt32(sealed.count)
            try emit([UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + sealed)
        }

        private func emit(_ bytes: [UInt8]) throws {
            hasher.update(bytes)
            byteCount += Int64(bytes.count)
            try file.write(contentsOf: bytes)
        }
    }

    /// Opens the sealed dump at `path` into `output`, checking its SHA-256 against `sha256`
    /// (hex) on the way. Throws at the first byte out of place: a changed, cut-off, extended or
    /// swapped file, or one sealed by a key the ring does not hold.
    static func open(path: String, key: SecretKey, database: String, sha256 expected: String, into output: FileHandle) throws {
        guard let file = FileHandle(forReadingAtPath: path) else { throw BackupError("cannot open \(path)") }
        defer { try? file.close() }
        var hasher = SHA256Hasher()
        var buffer: [UInt8] = []
        var offset = 0
        func take(_ count: Int) throws -> [UInt8]? {
            while buffer.count - offset < count {
                guard let more = try file.read(upToCount: max(1 << 20, count)), !more.isEmpty else { return nil }
                hasher.update(more)
                buffer = Array(buffer[offset...]) + more
                offset = 0
            }
            defer { offset += count }
            return Array(buffer[offset..<(offset + count)])
        }
        let name = URL(fileURLWithPath: path).lastPathComponent
        guard let start = try take(magic.count + SecretStream.headerByteCount), Array(start.prefix(magic.count)) == magic else {
            throw BackupError("\(name) is not a Rampart backup file")
        }
        var opener = try SecretStream.Opener(key: key, header: Array(start.dropFirst(magic.count)))
        let associatedData = associatedData(database: database)
        var finished = false
        while !finished {
            guard let prefix = try take(4) else { throw BackupError("\(name) is cut off: its last part is missing") }
            let length = Int(prefix[0]) << 24 | Int(prefix[1]) << 16 | Int(prefix[2]) << 8 | Int(prefix[3])
            guard (SecretStream.chunkOverhead...(chunkSize + SecretStream.chunkOverhead)).contains(length), let sealed = try take(length) else {
                throw BackupError("\(name) is damaged or cut off")
            }
            let chunk: (plaintext: [UInt8], isFinal: Bool)
            do {
                chunk = try opener.open(sealed, associatedData: associatedData)
            } catch {
                throw BackupError("\(name) failed authentication: it was changed, or is not \(database)'s dump under this key")
            }
            try output.write(contentsOf: chunk.plaintext)
            finished = chunk.isFinal
        }
        guard try take(1) == nil else { throw BackupError("\(name) has bytes after its end") }
        guard hexString(hasher.finish()) == expected else { throw BackupError("\(name) does not match the manifest's checksum") }
    }
}
