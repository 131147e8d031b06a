"""A tiny debugging SMTP server for the e-mail specs: it speaks enough of RFC 5321 (EHLO/HELO, MAIL, RCPT, DATA,
RSET, NOOP, QUIT) for ``smtplib`` to deliver to it over a real socket, keeps every message it receives, and can be
told to refuse the next deliveries with a temporary failure (451), as a mail server that is down would."""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field

__all__ = ["DebugSMTPServer", "Received"]


@dataclass
class Received:
    """One message as the server received it: the envelope and the whole MIME text."""

    mail_from: str
    rcpt_to: list[str]
    data: bytes


@dataclass
class _State:
    received: list[Received] = field(default_factory=list)
    refuse: int = 0  # how many DATA commands to answer 451
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(socketserver.StreamRequestHandler):
    state: _State

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")

    def handle(self) -> None:
        self._reply("220 debug.smtp.test ESMTP")
        mail_from, rcpt = "", []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            command = raw.decode("ascii", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self._reply("250-debug.smtp.test")
                self._reply("250 8BITMIME")
            elif verb == "HELO":
                self._reply("250 debug.smtp.test")
            elif verb == "MAIL":
                mail_from, rcpt = command.split(":", 1)[1].strip().split(" ")[0].strip("<>"), []
                self._reply("250 OK")
            elif verb == "RCPT":
                rcpt.append(command.split(":", 1)[1].strip().strip("<>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    line = self.rfile.readline()
                    if line in (b".\r\n", b".\n", b""):
                        break
                    lines.append(line[1:] if line.startswith(b"..") else line)
                with self.state.lock:
                    if self.state.refuse > 0:
                        self.state.refuse -= 1
                        self._reply("451 4.3.0 Temporary failure, try again later")
                        continue
                    self.state.received.append(Received(mail_from, rcpt, b"".join(lines)))
                self._reply("250 OK queued")
            elif verb in {"RSET", "NOOP"}:
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 Bye")
                return
            else:
                self._reply("502 Command not implemented")


class DebugSMTPServer:
    """Start with ``with DebugSMTPServer() as server:``; ``server.port``, ``server.received``, ``server.refuse``."""

    def __init__(self) -> None:
        self._state = _State()
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def received(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.received)

    def refuse(self, n: int) -> None:
        """Answer the next ``n`` messages 451 (a temporary failure)."""
        with self._state.lock:
            self._state.refuse = n

    def __enter__(self) -> DebugSMTPServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
