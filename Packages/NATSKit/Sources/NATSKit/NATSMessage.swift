import CNATS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Message headers. Names are case-sensitive (as nats.c keeps them); a name may repeat.
public struct NATSHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { fields.append((name, value)) }
    }

    /// The first value of `name`, or nil; setting replaces every value of `name`.
    public subscript(name: String) -> String? {
        get { fields.first { $0.name == name }?.value }
        set {
            fields.removeAll { $0.name == name }
            if let newValue { fields.append((name, newValue)) }
        }
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    public func values(_ name: String) -> [String] {
        fields.filter { $0.name == name }.map(\.value)
    }

    public var isEmpty: Bool { fields.isEmpty }

    public func makeIterator() -> some IteratorProtocol<(name: String, value: String)> {
        fields.makeIterator()
    }

    public static func == (lhs: NATSHeaders, rhs: NATSHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    /// Refuses what would break the wire framing: a name with anything but visible ASCII other
    /// than `:`, a value with CR, LF or NUL. Header values often come from clients (user agent).
    func validate() throws(NATSError) {
        for field in fields {
            guard !field.name.isEmpty,
                field.name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") })
            else {
                throw NATSError(.invalidArgument, "invalid header name \(field.name.debugDescription)")
            }
            guard !field.value.utf8.contains(where: { $0 == 0 || $0 == 10 || $0 == 13 }) else {
                throw NATSError(.invalidArgument, "header \(field.name) has a control character in its value")
            }
        }
    }
}

/// A message received from NATS, copied out of nats.c's memory.
public struct NATSMessage: Sendable {
    public var subject: String
    public var replySubject: String?
    public var headers: NATSHeaders
    public var payload: [UInt8]

    public init(subject: String, replySubject: String? = nil, headers: NATSHeaders = [:], payload: [UInt8] = []) {
        self.subject = subject
        self.replySubject = replySubject
        self.headers = headers
        self.payload = payload
    }

    /// Copies a nats.c message; the caller still owns (and destroys) `message`.
    init(copying message: OpaquePointer) {
        subject = String(cString: natsMsg_GetSubject(message))
        replySubject = natsMsg_GetReply(message).map { String(cString: $0) }
        let length = Int(natsMsg_GetDataLength(message))
        if length > 0, let data = natsMsg_GetData(message) {
            payload = data.withMemoryRebound(to: UInt8.self, capacity: length) {
                Array(UnsafeBufferPointer(start: $0, count: length))
            }
        } else {
            payload = []
        }
        headers = NATSHeaders(copying: message)
    }
}

extension NATSHeaders {
    init(copying message: OpaquePointer) {
        self.init()
        var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var keyCount: Int32 = 0
        guard natsMsgHeader_Keys(message, &keys, &keyCount) == NATS_OK, let keys else { return }
        defer { free(keys) }
        for index in 0..<Int(keyCount) {
            guard let key = keys[index] else { continue }
            var values: UnsafeMutablePointer<UnsafePointer<CChar>?>?
            var valueCount: Int32 = 0
            guard natsMsgHeader_Values(message, key, &values, &valueCount) == NATS_OK, let values else { continue }
            let name = String(cString: key)
            for valueIndex in 0..<Int(valueCount) {
                if let value = values[valueIndex] { add(name, String(cString: value)) }
            }
            free(values)
        }
    }
}

/// Creates a nats.c message ready to publish; the caller destroys it.
func makeMessage(subject: String, replySubject: String?, headers: NATSHeaders, payload: [UInt8]) throws(NATSError) -> OpaquePointer {
    try headers.validate()
    var message: OpaquePointer?
    let status = payload.withUnsafeBufferPointer { buffer in
        buffer.withMemoryRebound(to: CChar.self) { chars in
            natsMsg_Create(&message, subject, replySubject, chars.baseAddress, Int32(chars.count))
        }
    }
    try check(status, "create message for \(subject)")
    guard let message else { throw NATSError(.invalidArgument, "create message for \(subject)") }
    for field in headers.fields {
        let status = natsMsgHeader_Add(message, field.name, field.value)
        guard status == NATS_OK else {
            natsMsg_Destroy(message)
            throw NATSError(status: status, operation: "set header \(field.name)")
        }
    }
    return message
}
