import HTTPTypes

/// A cookie for browsers: HttpOnly and SameSite=Lax always; `__Host-` prefixed and Secure,
/// except on a plain-HTTP loopback address (`make run`), where a browser would not keep a
/// Secure cookie: there it goes without both, and the gateway says so at start.
struct BrowserCookie: Sendable {
    let name: String
    let secure: Bool

    init(_ base: String, publicURL: String) {
        let plainLoopback = ["http://127.", "http://localhost", "http://[::1]"].contains { publicURL.hasPrefix($0) }
        secure = !plainLoopback
        name = secure ? "__Host-" + base : base
    }

    /// The Set-Cookie value; without `seconds`, a cookie for the browser's session.
    func set(_ value: String, seconds: Int? = nil) -> String {
        "\(name)=\(value); Path=/" + (seconds.map { "; Max-Age=\($0)" } ?? "") + "; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")
    }

    func clear() -> String { set("", seconds: 0) }

    /// This cookie's value among those the request carries.
    func value(in headers: HTTPFields) -> String? {
        for field in headers[values: .cookie] {
            for pair in field.split(separator: ";") {
                let parts = pair.drop(while: { $0 == " " }).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
        }
        return nil
    }
}
