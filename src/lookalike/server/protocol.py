"""The HTTP/1.1 protocol uvicorn runs, with the API's error shape for what never reaches the app.

A request uvicorn cannot parse (a malformed request line or header, a bad Content-Length, bytes that are not
HTTP) is answered by uvicorn itself, in plain text ("Invalid HTTP request received."). Here that answer is
the API's JSON error, ``{"error": "...", "status": 400}``, like every other: a client reads one shape.
"""

from __future__ import annotations

import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class JsonErrorsH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:  # uvicorn's hook for requests h11 refused
        body = json.dumps({"error": f"malformed HTTP request: {msg.rstrip('.')}", "status": 400}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()
