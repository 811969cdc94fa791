"""A real SMTP server for Latchkey's integration tests.

Usage: python sink.py <maildir> [--remove-on-exit]

Listens on 127.0.0.1 on a port chosen by the OS and prints `PORT <n>` on stdout.
Clients must authenticate (AUTH PLAIN or LOGIN) as `latchkey` / `sink-secret`; plain
text AUTH is allowed so the tests prove the credentials are sent. Each delivered
message is written once per recipient as `<maildir>/<recipient lower-cased>/<n>.json`
with the keys subject, from, to, text and html; files appear atomically (written under
a temporary name, then renamed). The server exits when its stdin reaches EOF, so it
dies with the test process that started it; with --remove-on-exit it deletes the
maildir first.
"""

import asyncio
import email
import email.policy
import itertools
import json
import logging
import os
import shutil
import sys
import threading
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# Plain-text AUTH is the point here (loopback only); keep the log free of the warnings
# aiosmtpd gives about it so real errors stand out.
warnings.filterwarnings("ignore", module="aiosmtpd")
warnings.filterwarnings("ignore", message=".*login_data is deprecated.*")
logging.getLogger("mail.log").setLevel(logging.ERROR)

USERNAME = b"latchkey"
PASSWORD = b"sink-secret"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME
        and auth_data.password == PASSWORD
    )
    return AuthResult(success=ok, handled=False)


def body_of(message, subtype):
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return ""
    return part.get_content().replace("\r\n", "\n")


class Sink:
    def __init__(self, maildir):
        self.maildir = maildir
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        record = {
            "subject": str(message.get("Subject", "")),
            "from": str(message.get("From", "")),
            "to": str(message.get("To", "")),
            "text": body_of(message, "plain"),
            "html": body_of(message, "html"),
        }
        data = json.dumps(record, ensure_ascii=False).encode("utf-8")
        for recipient in envelope.rcpt_tos:
            box = os.path.join(self.maildir, recipient.lower())
            os.makedirs(box, exist_ok=True)
            n = next(self.counter)
            temporary = os.path.join(box, f".{n}.tmp")
            with open(temporary, "wb") as file:
                file.write(data)
            # Zero-padded so that names sort in delivery order.
            os.replace(temporary, os.path.join(box, f"{n:08}.json"))
        return "250 Message accepted for delivery"


def exit_at_stdin_eof(maildir, remove):
    try:
        while sys.stdin.buffer.read(4096):
            pass
        if remove:
            shutil.rmtree(maildir, ignore_errors=True)
    finally:
        os._exit(0)


async def main(maildir):
    os.makedirs(maildir, exist_ok=True)
    handler = Sink(maildir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="latchkey-test-sink",
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=False,
        ),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    remove = "--remove-on-exit" in arguments
    arguments = [a for a in arguments if a != "--remove-on-exit"]
    if len(arguments) != 1:
        print("usage: sink.py <maildir> [--remove-on-exit]", file=sys.stderr)
        sys.exit(2)
    maildir = arguments[0]
    threading.Thread(target=exit_at_stdin_eof, args=(maildir, remove), daemon=True).start()
    asyncio.run(main(maildir))
