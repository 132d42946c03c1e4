"""A real SMTP server for the mail tests (aiosmtpd, pinned by scripts/venv.sh), on loopback.

Every message it accepts is written to <dir>/<n>.eml with <n>.json beside it (the envelope:
MAIL FROM, RCPT TO, whether TLS was on, who authenticated). Each MAIL command is appended to
<dir>/commands.log, so a test can tell that nothing was sent in clear.

  --starttls CERT KEY     offer STARTTLS with this certificate (otherwise none is offered)
  --implicit-tls          TLS from the first byte instead (smtps), with the same certificate
  --require-tls           refuse MAIL before STARTTLS
  --auth USER:PASSWORD    require AUTH (PLAIN or LOGIN) with these credentials
  --fail-first N          answer the first N messages 451 (a transient refusal), then accept
  --reject                answer every message 554 (a permanent refusal)
"""
import argparse, asyncio, json, os, ssl, sys, time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Recorder:
    def __init__(self, folder, fail_first, reject, implicit_tls):
        self.folder, self.fail_first, self.reject, self.implicit_tls, self.count = folder, fail_first, reject, implicit_tls, 0

    async def handle_MAIL(self, server, session, envelope, address, options):
        with open(os.path.join(self.folder, "commands.log"), "a") as log:
            log.write(f"MAIL {address} tls={self.implicit_tls or session.ssl is not None}\n")
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.reject:
            return "554 5.7.1 message refused"
        if self.fail_first > 0:
            self.fail_first -= 1
            return "451 4.3.0 try again later"
        self.count += 1
        base = os.path.join(self.folder, str(self.count))
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        envelope_json = json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                                    "tls": self.implicit_tls or session.ssl is not None, "login": login})
        # The envelope first and each file whole (renamed into place): a reader that sees
        # <n>.eml finds <n>.json complete.
        for suffix, data in ((".json", envelope_json.encode()), (".eml", envelope.original_content)):
            with open(base + suffix + ".tmp", "wb") as out:
                out.write(data)
            os.rename(base + suffix + ".tmp", base + suffix)
        return "250 2.0.0 accepted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--starttls", nargs=2)
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--require-tls", action="store_true")
    parser.add_argument("--auth")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--reject", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    context = None
    if args.starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.starttls)

    def authenticator(server, session, envelope, mechanism, auth_data):
        user, password = args.auth.split(":", 1)
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, auth_data=auth_data)

    kwargs = {"require_starttls": args.require_tls, "auth_required": bool(args.auth), "auth_require_tls": True}
    if args.auth:
        kwargs["authenticator"] = authenticator
    if args.implicit_tls:
        controller = Controller(Recorder(args.dir, args.fail_first, args.reject, args.implicit_tls), hostname="127.0.0.1", port=args.port,
                                ssl_context=context, server_hostname="localhost", **kwargs)
    else:
        controller = Controller(Recorder(args.dir, args.fail_first, args.reject, args.implicit_tls), hostname="127.0.0.1", port=args.port,
                                tls_context=context, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
