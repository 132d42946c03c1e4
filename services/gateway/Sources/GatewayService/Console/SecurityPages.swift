// Date formatting, UUID.
import Foundation
import HTTPTypes
import Hummingbird
import RampartModels
import ServiceKit
import SodiumKit

/// Settings → Security (MFA-1…3, AUTH-6, AUTH-9): turn MFA on with the QR code and the secret,
/// the backup codes shown once, MFA off, the person's sessions, the password. Each change is a
/// form posted here and made through the REST API; after it, the browser comes back to the page
/// (`?done=` names what was done, never a value).
struct SecurityPages {
    let console: ConsoleRoutes

    static let path = "/console/settings/security"

    /// What `?done=` may say.
    static let notices = [
        "mfa-off": "MFA is off. Your password alone now signs you in.",
        "password": "Your password is changed. Your other sessions have ended.",
        "session": "That session has ended.",
        "sessions": "Your other sessions have ended.",
        "confirmed": "Thank you: you can go on.",
    ]

    func add(to router: Router<GatewayRequestContext>) {
        let security = router.group("/console/settings/security")
        security.get { request, context in
            try await console.signedInPage(request, context) { call in try await overview(call) }
        }
        security.post("mfa/enroll") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                var message = Rampart_V1_MfaEnrollRequest()
                message.password = form["password"] ?? ""
                do {
                    let enrolment = try await call.send(.post, "/v1/auth/mfa/totp/enroll", message, as: Rampart_V1_MfaEnrollReply.self)
                    return try await console.page("mfa-enroll", call, section: "security", Self.enrolment(enrolment))
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    return try await overview(call, status: refusal.status, ["error_enroll_password": refusal.detail])
                }
            }
        }
        security.post("mfa/confirm") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                var message = Rampart_V1_MfaConfirmRequest()
                message.code = form["code"] ?? ""
                do {
                    let reply = try await call.send(.post, "/v1/auth/mfa/totp/confirm", message, as: Rampart_V1_MfaConfirmReply.self)
                    return try await console.page("backup-codes", call, section: "security", Self.backupCodes(reply.backupCodes, first: true))
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    // The QR code is not shown again: the app already has the secret.
                    return try await console.page("mfa-enroll", call, section: "security", status: refusal.status, ["codeError": refusal.detail])
                }
            }
        }
        security.post("backup-codes") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                var message = Rampart_V1_MfaProofRequest()
                message.code = form["code"] ?? ""
                do {
                    let reply = try await call.send(.post, "/v1/auth/mfa/backup-codes/regenerate", message, as: Rampart_V1_MfaConfirmReply.self)
                    return try await console.page("backup-codes", call, section: "security", Self.backupCodes(reply.backupCodes, first: false))
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    return try await overview(call, status: refusal.status, ["error_regenerate_code": refusal.detail])
                }
            }
        }
        security.post("mfa/disable") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                var message = Rampart_V1_MfaProofRequest()
                message.code = form["code"] ?? ""
                do {
                    _ = try await call.send(.delete, "/v1/auth/mfa", message, as: Rampart_V1_MfaDisableReply.self)
                    return ConsoleRoutes.seeOther(Self.path + "?done=mfa-off")
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    return try await overview(call, status: refusal.status, ["error_disable_code": refusal.detail])
                }
            }
        }
        security.post("sessions/end") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                // Only a session's ID goes into the API's path.
                guard let id = form["session_id"].flatMap(UUID.init(uuidString:)) else {
                    return try await overview(call, status: .badRequest, ["problem": "That is not one of your sessions."])
                }
                do {
                    _ = try await call.send(.delete, "/v1/auth/sessions/\(id.uuidString.lowercased())", as: Rampart_V1_LogoutReply.self)
                    return ConsoleRoutes.seeOther(Self.path + "?done=session")
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    return try await overview(call, status: refusal.status, ["problem": refusal.detail])
                }
            }
        }
        security.post("sessions/end-others") { request, context in
            _ = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                _ = try await call.send(.delete, "/v1/auth/sessions", as: Rampart_V1_RevokeSessionsReply.self)
                return ConsoleRoutes.seeOther(Self.path + "?done=sessions")
            }
        }
        security.post("password") { request, context in
            let form = try await console.checkedForm(request, context)
            return try await console.signedInPage(request, context, returnTo: Self.path) { call in
                var message = Rampart_V1_ChangePasswordRequest()
                message.currentPassword = form["current_password"] ?? ""
                message.newPassword = form["new_password"] ?? ""
                do {
                    _ = try await call.send(.post, "/v1/auth/password/change", message, as: Rampart_V1_ChangePasswordReply.self)
                    return ConsoleRoutes.seeOther(Self.path + "?done=password")
                } catch let refusal as ConsoleRefusal where refusal.status != .unauthorized {
                    // Next to the field the problem names; the new password's rules by default.
                    let field = refusal.errors["field"] == "current_password" ? "error_current_password" : "error_new_password"
                    return try await overview(call, status: refusal.status, [field: refusal.detail])
                }
            }
        }
    }

    /// The page: MFA's state, the sessions, the password form; `values` adds what a refused
    /// form says.
    private func overview(_ call: ConsoleCall, status: HTTPResponse.Status = .ok, _ values: [String: Any] = [:]) async throws -> Response {
        async let mfa = call.get("/v1/auth/mfa", as: Rampart_V1_MfaStatusReply.self)
        async let sessions = call.get("/v1/auth/sessions", as: Rampart_V1_ListSessionsReply.self)
        let (status_, list) = try await (mfa, sessions)
        var object: [String: Any] = [
            "mfaOn": status_.enabled,
            "mfaSince": Self.time(status_.enabledAtMs),
            "backupCodesLeft": Int(status_.backupCodesRemaining),
            "fewBackupCodes": status_.enabled && status_.backupCodesRemaining <= 3,
            "sessions": list.sessions.map { session -> [String: Any] in
                [
                    "id": session.sessionID,
                    "device": session.userAgent.isEmpty ? "Unknown device" : Self.device(session.userAgent),
                    "ip": session.ip.isEmpty ? "unknown" : session.ip,
                    "lastSeen": Self.time(session.lastSeenAtMs),
                    "current": session.current,
                ]
            },
            "otherSessions": list.sessions.contains { !$0.current },
        ]
        object["notice"] = call.notice(Self.notices)
        object.merge(values) { _, new in new }
        return try await console.page("security", call, status: status, object)
    }

    /// The enrolment page's values: the QR code as an image (CSP allows `data:` images only),
    /// the secret in groups of four for typing.
    static func enrolment(_ reply: Rampart_V1_MfaEnrollReply) -> [String: Any] {
        var groups: [String] = []
        var rest = Substring(reply.secret)
        while !rest.isEmpty {
            groups.append(String(rest.prefix(4)))
            rest = rest.dropFirst(4)
        }
        return [
            "qr": "data:image/svg+xml;base64," + Base64.encode(Array(reply.qrSvg.utf8)),
            "secret": groups.joined(separator: " "),
        ]
    }

    /// The backup codes, once, and as a text file to keep.
    static func backupCodes(_ codes: [String], first: Bool) -> [String: Any] {
        let file = "Rampart backup codes. Each one signs you in once, in place of a code from your app.\n\n" + codes.joined(separator: "\n") + "\n"
        return [
            "codes": codes,
            "download": "data:text/plain;charset=utf-8;base64," + Base64.encode(Array(file.utf8)),
            "first": first,
        ]
    }

    /// A time for people: "2026-12-05 07:42 UTC".
    static func time(_ milliseconds: Int64) -> String {
        guard milliseconds > 0 else { return "" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    /// A user agent, short enough for a table cell.
    static func device(_ userAgent: String) -> String {
        userAgent.count <= 80 ? userAgent : String(userAgent.prefix(79)) + "…"
    }
}
