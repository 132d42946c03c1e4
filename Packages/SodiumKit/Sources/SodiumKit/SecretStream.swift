import CSodium

/// Authenticated encryption of a stream of any length in chunks (libsodium's secretstream,
/// XChaCha20-Poly1305): each chunk is authenticated, chunks cannot be reordered, dropped or
/// repeated, and the last one is marked, so a cut-off stream is detected too.
public enum SecretStream {
    public static let headerByteCount = Int(crypto_secretstream_xchacha20poly1305_headerbytes())
    /// What each chunk adds to its plaintext.
    public static let chunkOverhead = Int(crypto_secretstream_xchacha20poly1305_abytes())

    /// Seals chunk after chunk; `header` goes before them, in the clear.
    public struct Sealer: ~Copyable {
        private var state: crypto_secretstream_xchacha20poly1305_state
        public let header: [UInt8]

        public init(key: SecretKey) throws(SodiumError) {
            try Sodium.ensureReady()
            var state = crypto_secretstream_xchacha20poly1305_state()
            var header = [UInt8](repeating: 0, count: SecretStream.headerByteCount)
            key.withBytes { keyBytes in
                _ = crypto_secretstream_xchacha20poly1305_init_push(&state, &header, keyBytes.bindMemory(to: UInt8.self).baseAddress!)
            }
            self.state = state
            self.header = header
        }

        /// The sealed chunk: `plaintext.count + chunkOverhead` bytes. `isFinal` on the last one.
        public mutating func seal(_ plaintext: [UInt8], associatedData: [UInt8] = [], isFinal: Bool) -> [UInt8] {
            var sealed = [UInt8](repeating: 0, count: plaintext.count + SecretStream.chunkOverhead)
            let tag = isFinal ? crypto_secretstream_xchacha20poly1305_tag_final() : crypto_secretstream_xchacha20poly1305_tag_message()
            _ = crypto_secretstream_xchacha20poly1305_push(
                &state,
                &sealed,
                nil,
                plaintext,
                UInt64(plaintext.count),
                associatedData,
                UInt64(associatedData.count),
                tag
            )
            return sealed
        }
    }

    /// Opens the chunks a `Sealer` made, in order.
    public struct Opener: ~Copyable {
        private var state: crypto_secretstream_xchacha20poly1305_state

        public init(key: SecretKey, header: [UInt8]) throws(SodiumError) {
            try Sodium.ensureReady()
            guard header.count == SecretStream.headerByteCount else { throw .malformed("a stream header is \(SecretStream.headerByteCount) bytes") }
            var state = crypto_secretstream_xchacha20poly1305_state()
            let status = key.withBytes { keyBytes in
                crypto_secretstream_xchacha20poly1305_init_pull(&state, header, keyBytes.bindMemory(to: UInt8.self).baseAddress!)
            }
            guard status == 0 else { throw .malformed("invalid stream header") }
            self.state = state
        }

        /// The chunk's plaintext and whether it was the last; throws when it was changed, is out of
        /// place or was sealed under another key or associated data.
        public mutating func open(_ sealed: [UInt8], associatedData: [UInt8] = []) throws(SodiumError) -> (plaintext: [UInt8], isFinal: Bool) {
            guard sealed.count >= SecretStream.chunkOverhead else { throw .authenticationFailed }
            var plaintext = [UInt8](repeating: 0, count: sealed.count - SecretStream.chunkOverhead)
            var tag: UInt8 = 0
            let status = crypto_secretstream_xchacha20poly1305_pull(
                &state,
                &plaintext,
                nil,
                &tag,
                sealed,
                UInt64(sealed.count),
                associatedData,
                UInt64(associatedData.count)
            )
            guard status == 0 else { throw .authenticationFailed }
            return (plaintext, tag == crypto_secretstream_xchacha20poly1305_tag_final())
        }
    }
}
