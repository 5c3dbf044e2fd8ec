"""A real SMTP server for the alert tests (aiosmtpd), on a free loopback port.

Each message it accepts becomes one JSON file in OUT_DIR: the envelope, the parsed headers, the
decoded text body, the raw message, whether the session was encrypted and who logged in.
Prints "ready PORT" once listening, and stops when its standard input closes.

usage: smtp_sink.py OUT_DIR [--tls none|starttls|tls --cert PEM --key PEM] [--user U --password P]
"""

import argparse
import email
import email.policy
import json
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        auth = session.auth_data
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[name, str(value)] for name, value in message.items()],
            "subject": str(message["subject"]),
            "from": str(message["from"]),
            "to": [a.addr_spec for a in message["to"].addresses] if message["to"] else [],
            "content_type": message.get_content_type(),
            "body": body.get_content() if body is not None else None,
            "raw": raw.decode("utf-8", "replace"),
            # The transport, not session.ssl, which aiosmtpd sets only after STARTTLS.
            "encrypted": server.transport.get_extra_info("ssl_object") is not None,
            "login": auth.login.decode() if isinstance(auth, LoginPassword) else None,
        }
        self.count += 1
        # Written whole, then renamed: a reader never sees half a file.
        path = os.path.join(self.out_dir, f"{self.count:03}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--tls", choices=["none", "starttls", "tls"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()

    kwargs = {}
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        if args.tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            kwargs.update(ssl_context=context)
    if args.user:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == args.user
                and auth_data.password.decode() == args.password
            )
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        # aiosmtpd counts only STARTTLS as TLS; a connection that is TLS from the first byte
        # must be told that login is safe on it.
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=args.tls != "tls")

    controller = Controller(Sink(args.out_dir), hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    print(f"ready {controller.port}", flush=True)
    # Until the test drops its end of the pipe (or dies).
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
