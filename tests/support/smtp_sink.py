#!/usr/bin/python3
"""An SMTP server on 127.0.0.1 for the outbound mail tests (aiosmtpd).

usage: smtp_sink.py LOG

Prints the port it listens on, then records every accepted message as one
JSON line in LOG: envelope sender and recipients, the login when the client
authenticated, the raw message, its decoded subject and body. AUTH PLAIN and
LOGIN are offered without TLS and accept only todo / s3cret; AUTH is not
required. Recipients whose local part starts with "reject" get 550, "busy"
get 451. Exits when its standard input ends, so it never outlives the test.
"""
import asyncio
import email
import email.policy
import json
import logging
import os
import socket
import sys
import threading

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

USER, PASSWORD = b"todo", b"s3cret"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER and auth_data.password == PASSWORD
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class Handler:
    def __init__(self, log_path):
        self.log_path = log_path

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("busy"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": session.auth_data.login.decode() if session.authenticated else None,
            "raw": raw.decode("utf-8", "replace"),
            "subject": str(message["subject"]),
            "body": message.get_content(),
        }
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 accepted"


async def serve(log_path):
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's deprecation chatter
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    handler = Handler(log_path)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", authenticator=authenticator, auth_require_tls=False, loop=loop),
        sock=sock,
    )
    print(sock.getsockname()[1], flush=True)
    await server.serve_forever()


def exit_with_parent():
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    threading.Thread(target=exit_with_parent, daemon=True).start()
    asyncio.run(serve(sys.argv[1]))
