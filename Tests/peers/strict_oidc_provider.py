"""A strict OpenID provider for the SSO tests, on Authlib (pinned by scripts/venv.sh), on loopback.

Where oidc-provider-mock is lenient, this one refuses what a careful provider refuses: an
authorization request without PKCE S256, a nonce or a state; a token request without the
client's secret, with another redirect URI, a wrong code verifier or a spent code. It signs
ID tokens with ES256 or EdDSA keys it makes at start, can rotate them mid-test, says in its
discovery document that it sends RFC 9207's `iss` with every answer, and does.

The test steers it through POST /control (JSON, all fields optional):
  {"user": {claims of the person who signs in next, "sub" included},
   "alg": "ES256" | "EdDSA",                   the key the next ID tokens are signed with
   "rotate": true,                              a new key of that algorithm; the old one leaves the JWKS
   "misbehave": "wrong_nonce" | "expired" | "other_audience" | "several_audiences" | "tampered"
                | "unknown_key" | "wrong_iss_parameter" | "no_iss_parameter" | "none_alg" | null}
and reads what it saw at GET /control (the last authorization and token requests).

  --port N            the port
  --client-id ID      the one client it knows
  --client-secret S   its secret
  --redirect-uri URI  its one redirect URI
"""
import argparse, base64, json, secrets, sys, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from authlib.jose import JsonWebKey, jwt
from authlib.oauth2.rfc7636 import create_s256_code_challenge


class Provider:
    def __init__(self, issuer, client_id, client_secret, redirect_uri):
        self.issuer, self.client_id, self.client_secret, self.redirect_uri = issuer, client_id, client_secret, redirect_uri
        self.lock = threading.Lock()
        self.keys = {"ES256": self.new_key("ES256"), "EdDSA": self.new_key("EdDSA")}
        self.alg = "ES256"
        self.user = {"sub": "default", "email": "default@example.com", "email_verified": True}
        self.misbehave = None
        self.codes = {}
        self.seen = {}

    @staticmethod
    def new_key(alg):
        key = JsonWebKey.generate_key("EC", "P-256", is_private=True) if alg == "ES256" else JsonWebKey.generate_key("OKP", "Ed25519", is_private=True)
        return key

    def jwks(self):
        return {"keys": [dict(key.as_dict(is_private=False), alg=alg, use="sig") for alg, key in self.keys.items()]}

    def discovery(self):
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "EdDSA"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "authorization_response_iss_parameter_supported": True,
            "scopes_supported": ["openid", "email", "profile"],
        }

    def id_token(self, nonce):
        now = int(time.time())
        claims = dict(self.user)
        claims.update({"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300, "nonce": nonce})
        alg, key = self.alg, self.keys[self.alg]
        header = {"alg": alg, "kid": key.as_dict()["kid"], "typ": "JWT"}
        if self.misbehave == "wrong_nonce":
            claims["nonce"] = "not-" + nonce
        elif self.misbehave == "expired":
            claims["iat"], claims["exp"] = now - 900, now - 600
        elif self.misbehave == "other_audience":
            claims["aud"] = "another-client"
        elif self.misbehave == "several_audiences":
            claims["aud"] = [self.client_id, "another-client"]
        elif self.misbehave == "unknown_key":
            key = self.new_key(alg)
            header["kid"] = key.as_dict()["kid"]
        token = jwt.encode(header, claims, key).decode()
        if self.misbehave == "tampered":
            head, body, signature = token.split(".")
            claims["email"] = "someone.else@" + claims.get("email", "x@example.com").split("@")[-1]
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            token = ".".join([head, body, signature])
        elif self.misbehave == "none_alg":
            head = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            token = head + "." + body + "."
        return token


class Handler(BaseHTTPRequestHandler):
    provider = None

    def log_message(self, format, *args):
        sys.stderr.write("strict-provider: " + (format % args) + "\n")

    def answer(self, status, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, parameters):
        p = self.provider
        if p.misbehave == "wrong_iss_parameter":
            parameters["iss"] = "https://evil.example"
        elif p.misbehave != "no_iss_parameter":
            parameters["iss"] = p.issuer
        self.answer(302, headers={"Location": p.redirect_uri + "?" + urllib.parse.urlencode(parameters)})

    def do_GET(self):
        p = self.provider
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/.well-known/openid-configuration":
            return self.answer(200, p.discovery())
        if url.path == "/jwks":
            with p.lock:
                return self.answer(200, p.jwks())
        if url.path == "/control":
            with p.lock:
                return self.answer(200, p.seen)
        if url.path == "/authorize":
            with p.lock:
                p.seen["authorize"] = query
                if query.get("client_id") != p.client_id or query.get("redirect_uri") != p.redirect_uri:
                    return self.answer(400, {"error": "invalid_client"})
                state = query.get("state")
                refuse = None
                if query.get("response_type") != "code":
                    refuse = "unsupported_response_type"
                elif "openid" not in query.get("scope", "").split():
                    refuse = "invalid_scope"
                elif query.get("code_challenge_method") != "S256" or len(query.get("code_challenge", "")) != 43:
                    refuse = "invalid_request"  # PKCE S256 is required
                elif not query.get("nonce") or not state:
                    refuse = "invalid_request"
                if refuse:
                    return self.redirect({"error": refuse, **({"state": state} if state else {})})
                code = secrets.token_urlsafe(32)
                p.codes[code] = {"challenge": query["code_challenge"], "nonce": query["nonce"], "redirect_uri": query["redirect_uri"]}
                return self.redirect({"code": code, "state": state})
        self.answer(404, {"error": "not_found"})

    def do_POST(self):
        p = self.provider
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/control":
            order = json.loads(body or "{}")
            with p.lock:
                if "user" in order:
                    p.user = order["user"]
                if "alg" in order:
                    p.alg = order["alg"]
                if order.get("rotate"):
                    p.keys[p.alg] = p.new_key(p.alg)
                if "misbehave" in order:
                    p.misbehave = order["misbehave"]
            return self.answer(204)
        if url.path == "/token":
            form = dict(urllib.parse.parse_qsl(body))
            with p.lock:
                p.seen["token"] = {key: value for key, value in form.items() if key != "code"}
                authorization = self.headers.get("Authorization", "")
                expected = "Basic " + base64.b64encode(
                    (urllib.parse.quote(p.client_id, safe="") + ":" + urllib.parse.quote(p.client_secret, safe="")).encode()
                ).decode()
                if authorization != expected:
                    return self.answer(401, {"error": "invalid_client"})
                if form.get("grant_type") != "authorization_code":
                    return self.answer(400, {"error": "unsupported_grant_type"})
                grant = p.codes.pop(form.get("code", ""), None)  # a code is spent by its first use
                if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
                    return self.answer(400, {"error": "invalid_grant"})
                verifier = form.get("code_verifier", "")
                if not verifier or create_s256_code_challenge(verifier) != grant["challenge"]:
                    return self.answer(400, {"error": "invalid_grant"})
                token = p.id_token(grant["nonce"])
                return self.answer(200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300, "id_token": token})
        self.answer(404, {"error": "not_found"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", required=True)
    args = parser.parse_args()
    issuer = f"http://127.0.0.1:{args.port}"
    Handler.provider = Provider(issuer, args.client_id, args.client_secret, args.redirect_uri)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"strict-provider: {issuer}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
