public import NATSKit
public import RampartModels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// The call context of one request, carried in NATS headers (ARCHITECTURE "Messaging").
/// `init(headers:requirements:)` validates every header before a handler runs: a handler never
/// sees a malformed request ID, a tenant ID that is not 32 hex digits, or a bogus IP.
public struct CallContext: Sendable, Equatable {
    public var requestID: String
    public var tenantID: TenantID?
    public var principal: Principal?
    public var clientIP: String?
    public var userAgent: String?
    /// Unix epoch milliseconds after which the caller has given up.
    public var deadline: Int64
    public var traceparent: String?

    public init(
        requestID: String = CallContext.newRequestID(),
        tenantID: TenantID? = nil,
        principal: Principal? = nil,
        clientIP: String? = nil,
        userAgent: String? = nil,
        timeout: Duration = .seconds(5),
        traceparent: String? = nil
    ) {
        self.requestID = requestID
        self.tenantID = tenantID
        self.principal = principal
        self.clientIP = clientIP
        self.userAgent = userAgent
        self.deadline = Self.nowMilliseconds() + timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        self.traceparent = traceparent
    }

    /// The signed-in user the principal names (`user:<UUID>`), or nil for a service, an API
    /// key or nobody.
    public var userID: UUID? {
        principal?.userID
    }

    /// The tenant the call is about; a handler registered with `requires: .tenant` never throws.
    public func requireTenant() throws(RampartError) -> TenantID {
        guard let tenantID else { throw RampartError(.missingHeader, "the call names no tenant", details: ["header": CallHeader.tenantID]) }
        return tenantID
    }

    /// What a handler needs present, beyond request ID and deadline (always required).
    public struct Requirements: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        public static let tenant = Requirements(rawValue: 1 << 0)
        public static let principal = Requirements(rawValue: 1 << 1)
    }

    static let maximumUserAgentLength = 512

    public init(headers: NATSHeaders, requirements: Requirements = []) throws(RampartError) {
        guard let requestID = headers[CallHeader.requestID] else {
            throw Self.missing(CallHeader.requestID)
        }
        guard Self.isValidRequestID(requestID) else {
            throw Self.invalid(CallHeader.requestID, "1 to 128 of A-Z a-z 0-9 . _ : -")
        }
        self.requestID = requestID

        guard let deadlineText = headers[CallHeader.deadline] else { throw Self.missing(CallHeader.deadline) }
        guard let deadline = Int64(deadlineText), deadline > 0 else {
            throw Self.invalid(CallHeader.deadline, "Unix epoch milliseconds")
        }
        self.deadline = deadline

        if let tenant = headers[CallHeader.tenantID] {
            guard let tenantID = TenantID(tenant) else { throw Self.invalid(CallHeader.tenantID, "a tenant ID (32 hex digits)") }
            self.tenantID = tenantID
        } else if requirements.contains(.tenant) {
            throw Self.missing(CallHeader.tenantID)
        }

        if let text = headers[CallHeader.principal] {
            guard let principal = Principal(text) else {
                throw Self.invalid(CallHeader.principal, "user:<id>, api_key:<id> or system:<service>")
            }
            self.principal = principal
        } else if requirements.contains(.principal) {
            throw Self.missing(CallHeader.principal)
        }

        if let clientIP = headers[CallHeader.clientIP] {
            guard Self.isIPAddress(clientIP) else { throw Self.invalid(CallHeader.clientIP, "an IPv4 or IPv6 address") }
            self.clientIP = clientIP
        }
        if let userAgent = headers[CallHeader.userAgent] {
            guard userAgent.utf8.count <= Self.maximumUserAgentLength else {
                throw Self.invalid(CallHeader.userAgent, "at most \(Self.maximumUserAgentLength) bytes")
            }
            self.userAgent = userAgent
        }
        if let traceparent = headers[CallHeader.traceparent] {
            // W3C trace context: version-traceid-parentid-flags, 55 characters.
            guard traceparent.utf8.count == 55, Self.isValidToken(traceparent, maximumLength: 55) else {
                throw Self.invalid(CallHeader.traceparent, "a W3C traceparent")
            }
            self.traceparent = traceparent
        }
    }

    public var headers: NATSHeaders {
        var headers: NATSHeaders = [CallHeader.requestID: requestID, CallHeader.deadline: String(deadline)]
        if let tenantID { headers[CallHeader.tenantID] = tenantID.hex }
        if let principal { headers[CallHeader.principal] = principal.description }
        if let clientIP { headers[CallHeader.clientIP] = clientIP }
        if let userAgent { headers[CallHeader.userAgent] = userAgent }
        if let traceparent { headers[CallHeader.traceparent] = traceparent }
        return headers
    }

    /// Time left before the deadline (negative once passed).
    public var remaining: Duration {
        .milliseconds(deadline - Self.nowMilliseconds())
    }

    public static func newRequestID() -> String {
        randomHex128()
    }

    static func nowMilliseconds() -> Int64 {
        WallClock.milliseconds()
    }

    private static func missing(_ header: String) -> RampartError {
        RampartError(.missingHeader, "header \(header) is required", details: ["header": header])
    }

    private static func invalid(_ header: String, _ expected: String) -> RampartError {
        RampartError(.missingHeader, "header \(header) must be \(expected)", details: ["header": header])
    }

    /// 1 to 128 of A-Z a-z 0-9 . _ : - (what the gateway accepts from clients, too).
    public static func isValidRequestID(_ text: String) -> Bool {
        isValidToken(text, maximumLength: 128)
    }

    static func isValidToken(_ text: String, maximumLength: Int) -> Bool {
        (1...maximumLength).contains(text.utf8.count)
            && text.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || [UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-")].contains(byte)
            }
    }

    static func isIPAddress(_ text: String) -> Bool {
        guard text.utf8.count <= 45 else { return false }
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
