// String(format:) is Foundation's, not FoundationEssentials'.
import Foundation
import Mustache
public import RampartModels

/// What each kind of mail says (swift-mustache): a subject and a plain-text body (the TEXT
/// content type: nothing escaped, headers are encoded apart), and an HTML body in which every
/// value is HTML-escaped. Tenant names, inviters and other values come from people: the
/// templates put them where escaping applies and never put a secret in a subject.
public struct MailTemplates: Sendable {
    struct Kind {
        var subject: MustacheTemplate
        var text: MustacheTemplate
        var html: MustacheTemplate
        /// Where the link leads, below the public URL; the token follows as `?token=`.
        var path: String
        /// The link carries an account token: a request without one is not sent.
        var needsToken: Bool
    }

    private var kinds: [String: Kind]

    public init() {
        func kind(_ subject: String, _ text: String, _ html: String, path: String, needsToken: Bool = false) -> Kind {
            // The templates are constants of this file: a parse error is a programming error.
            Kind(
                subject: try! MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + subject),
                text: try! MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + text),
                html: try! MustacheTemplate(string: Self.page(html)),
                path: path,
                needsToken: needsToken
            )
        }
        kinds = [
            "invitation": kind(
                "Join {{tenant}} on Rampart",
                """
                Hello,

                {{#inviter}}{{inviter}} invited you{{/inviter}}{{^inviter}}You are invited{{/inviter}} to join {{tenant}} on Rampart as {{role}}.

                Accept the invitation: {{link}}

                The link works once, until {{expires}}. If you did not expect this mail, ignore it: nothing happens without the link.
                """,
                """
                <p>Hello,</p>
                <p>{{#inviter}}{{inviter}} invited you{{/inviter}}{{^inviter}}You are invited{{/inviter}} to join <strong>{{tenant}}</strong> on Rampart as {{role}}.</p>
                <p><a href="{{link}}">Accept the invitation</a></p>
                <p>The link works once, until {{expires}}. If you did not expect this mail, ignore it: nothing happens without the link.</p>
                """,
                path: "/console/invitations/accept",
                needsToken: true
            ),
            "password_reset": kind(
                "Reset your Rampart password",
                """
                Hello,

                Someone asked to reset the password of the Rampart account for this address. If it was you, choose a new one here: {{link}}

                The link works once, until {{expires}}. If it was not you, ignore this mail: your password stays as it is.
                """,
                """
                <p>Hello,</p>
                <p>Someone asked to reset the password of the Rampart account for this address. If it was you, <a href="{{link}}">choose a new password</a>.</p>
                <p>The link works once, until {{expires}}. If it was not you, ignore this mail: your password stays as it is.</p>
                """,
                path: "/console/reset-password",
                needsToken: true
            ),
            "email_verification": kind(
                "Confirm your address for Rampart",
                """
                Hello{{#name}} {{name}}{{/name}},

                Confirm that this address is yours: {{link}}

                The link works once, until {{expires}}. If you did not create a Rampart account, ignore this mail.
                """,
                """
                <p>Hello{{#name}} {{name}}{{/name}},</p>
                <p><a href="{{link}}">Confirm that this address is yours</a>.</p>
                <p>The link works once, until {{expires}}. If you did not create a Rampart account, ignore this mail.</p>
                """,
                path: "/console/verify-email",
                needsToken: true
            ),
        ]
        // Security notices: what happened, when and from where, and what to do if it was not you.
        func notice(_ subject: String, _ what: String) -> Kind {
            kind(
                subject,
                """
                Hello{{#name}} {{name}}{{/name}},

                \(what)

                When: {{when}}
                From: {{ip}} ({{user_agent}})

                If this was you, there is nothing to do. If it was not, reset your password now and tell your organization's administrator.
                """,
                """
                <p>Hello{{#name}} {{name}}{{/name}},</p>
                <p>\(what)</p>
                <p>When: {{when}}<br>From: {{ip}} ({{user_agent}})</p>
                <p>If this was you, there is nothing to do. If it was not, reset your password now and tell your organization's administrator.</p>
                """,
                path: "/console/reset-password"
            )
        }
        kinds["notice_new_sign_in"] = notice(
            "New sign-in to your Rampart account",
            "Your account was signed in to from a device or address it had not used before."
        )
        kinds["notice_password_changed"] = notice(
            "Your Rampart password was changed",
            "The password of your account was {{#by_reset}}reset with a link sent to this address, and every session and API key made before it was ended{{/by_reset}}{{^by_reset}}changed, and your other sessions were ended{{/by_reset}}.{{#mfa_removed}} Two-factor authentication set up before this address was verified was removed: set it up again.{{/mfa_removed}}"
        )
        kinds["notice_mfa_disabled"] = notice(
            "Two-factor authentication was turned off",
            "Two-factor authentication was turned off for your account: signing in now needs only the password."
        )
        kinds["notice_mfa_reset"] = notice(
            "An administrator reset your two-factor authentication",
            "An administrator of one of your organizations turned two-factor authentication off for your account, as is done when the phone and backup codes are lost. Set it up again at your next sign-in."
        )
        // Told when wrong second-factor codes locked it: whoever typed them had the password.
        kinds["notice_mfa_locked"] = kind(
            "Your two-factor codes were guessed at: sign-in is paused",
            """
            Hello{{#name}} {{name}}{{/name}},

            Someone who knows your password entered many wrong two-factor codes for your account. To keep them out, codes are refused for {{minutes}} minutes, for you as well.

            When: {{when}}
            From: {{ip}} ({{user_agent}})

            Your password is known to someone else: reset it now. The reset lifts the pause at once. Then tell your organization's administrator.
            """,
            """
            <p>Hello{{#name}} {{name}}{{/name}},</p>
            <p>Someone who knows your password entered many wrong two-factor codes for your account. To keep them out, codes are refused for {{minutes}} minutes, for you as well.</p>
            <p>When: {{when}}<br>From: {{ip}} ({{user_agent}})</p>
            <p>Your password is known to someone else: reset it now. The reset lifts the pause at once. Then tell your organization's administrator.</p>
            """,
            path: "/console/reset-password"
        )
        // Told to the owner of an address someone tried to register again: no account was made,
        // and the way back in if it was them and they forgot.
        kinds["notice_registration_attempted"] = kind(
            "Someone tried to create a Rampart account with your address",
            """
            Hello{{#name}} {{name}}{{/name}},

            Someone tried to create a new Rampart account with this address, which already has one. No account was created and nothing about yours changed.

            When: {{when}}
            From: {{ip}} ({{user_agent}})

            If it was you, sign in with your account, or reset your password if you forgot it. If it was not, there is nothing to do.
            """,
            """
            <p>Hello{{#name}} {{name}}{{/name}},</p>
            <p>Someone tried to create a new Rampart account with this address, which already has one. No account was created and nothing about yours changed.</p>
            <p>When: {{when}}<br>From: {{ip}} ({{user_agent}})</p>
            <p>If it was you, sign in with your account, or reset your password if you forgot it. If it was not, there is nothing to do.</p>
            """,
            path: "/console/reset-password"
        )
        kinds["notice_api_key_created"] = notice(
            "A new API key was created",
            "A new API key, {{key_name}} ({{key_prefix}}…), was created with your account. It can act as you within its scopes until it is revoked."
        )
    }

    public func knows(_ template: String) -> Bool { kinds[template] != nil }

    /// Whether `template`'s link carries an account token.
    public func needsToken(_ template: String) -> Bool { kinds[template]?.needsToken ?? false }

    /// Subject, text and HTML of `request`, with its link under `publicURL` (carrying `token`,
    /// opened from the request); nil for a template this build does not know.
    public func render(_ request: Rampart_V1_MailRequest, token: String?, publicURL: String) -> (subject: String, text: String, html: String)? {
        guard let kind = kinds[request.template] else { return nil }
        var values: [String: Any] = [:]
        for (key, value) in request.values where Self.isValueName(key) { values[key] = value }
        values["tenant"] = request.tenantName
        values["name"] = request.recipientName
        values["link"] = link(token, kind: kind, publicURL: publicURL)
        values["expires"] = Self.time(request.expiresAtMs)
        values["when"] = Self.time(request.occurredAtMs)
        return (kind.subject.render(values), kind.text.render(values), kind.html.render(values))
    }

    private func link(_ token: String?, kind: Kind, publicURL: String) -> String {
        guard let token else { return publicURL + kind.path }
        // Tokens are base64url with a dot; anything else a publisher put there is percent-encoded.
        var encoded = ""
        for byte in token.utf8 {
            let safe =
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: ".")
            encoded += safe ? String(UnicodeScalar(byte)) : String(format: "%%%02X", byte)
        }
        return "\(publicURL)\(kind.path)?token=\(encoded)"
    }

    static func isValueName(_ key: String) -> Bool {
        (1...32).contains(key.utf8.count) && key.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || $0 == UInt8(ascii: "_") }
    }

    /// `2026-12-08 21:21 UTC`.
    static func time(_ milliseconds: Int64) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
        return String(format: "%04d-%02d-%02d %02d:%02d UTC", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0, parts.hour ?? 0, parts.minute ?? 0)
    }

    private static func page(_ body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>Rampart</title></head>
        <body style="font-family: sans-serif; line-height: 1.5; max-width: 40em">
        \(body)
        </body></html>
        """
    }
}
