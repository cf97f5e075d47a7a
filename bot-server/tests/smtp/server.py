"""A real SMTP server for the bot server's mail tests (aiosmtpd) on loopback.

With TLS (the default) it offers STARTTLS with the test certificate and refuses mail and
sign-in before it; it requires the test credentials. `--plain` offers no TLS at all, to
show the bot server then sends nothing. Each message received is written to OUT as
NNNN.eml, its envelope recipients on the first line.

Environment: PORT, OUT, CERT and KEY (PEM), SMTP_USER and SMTP_PASSWORD.
"""
import asyncio
import os
import pathlib
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

OUT = pathlib.Path(os.environ["OUT"])
USER = os.environ["SMTP_USER"].encode()
PASSWORD = os.environ["SMTP_PASSWORD"].encode()


class Save:
    async def handle_DATA(self, server, session, envelope):
        n = len(list(OUT.glob("*.eml")))
        head = ("TO: " + ",".join(envelope.rcpt_tos) + "\n").encode()
        (OUT / f"{n:04}.eml").write_bytes(head + envelope.content)
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER
        and auth_data.password == PASSWORD
    )
    return AuthResult(success=ok)


def main():
    plain = "--plain" in sys.argv
    options = {}
    if not plain:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(os.environ["CERT"], os.environ["KEY"])
        options = dict(
            tls_context=context,
            require_starttls=True,
            authenticator=authenticate,
            auth_required=True,
            auth_require_tls=True,
        )
    controller = Controller(
        Save(), hostname="127.0.0.1", port=int(os.environ["PORT"]), **options
    )
    controller.start()
    print("ready", flush=True)
    asyncio.get_event_loop().run_forever()


if __name__ == "__main__":
    main()
