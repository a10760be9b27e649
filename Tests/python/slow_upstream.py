"""A stand-in task core for the tests of what the gateway does with its upstream: a threaded
HTTP/1.1 server (keep-alive, so the gateway may pipeline on one connection).

Every POST is answered after `delay` seconds; the request's own extensions (which the gateway
forwards as they are) script the answer:

- `"fast": true`: no delay;
- `"marker": N`: a Start Task answer with `task_id` N (default 1), so a test can tell which
  request an answer belongs to;
- `"status": N` with optional `"exception"` and `"message"`: an error answer in the contract's
  shape (`Retry-After: 1` on 429 and 503);
- `"raw": "text"`: that text as the body, `Content-Type: text/plain` (with `status`, or 201);
- `"drop": true`: the connection is closed without an answer.

Any other request (GET, DELETE; the gateway's `GET {base}/store` handshake too, which is not
recorded in `received`) is answered at once with 404, and so is a batch (`POST …/batch`):
like a vendor core, it has no batch extension, so the gateway falls back to single calls.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlowUpstream:
    def __init__(self, delay: float = 2.0, port: int = 0):
        self.delay = delay
        self.received: list[tuple[str, str, bytes]] = []  # (method, path, body), arrival order
        self.connections = 0
        self.batch_probes = 0  # batches the gateway tried before falling back to single calls
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                owner.connections += 1

            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: bytes, content_type="application/json", extra: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(body)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    # The gateway closed this connection (a test ended, a call was abandoned).
                    self.close_connection = True

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.endswith("/batch"):
                    # A vendor core has no batch extension: 404 at once, as for any unknown
                    # path. The gateway then sends each call on its own (vendor mode).
                    owner.batch_probes += 1
                    self._answer(404, b'{"message":"no operation","exception":"NotFoundException"}')
                    return
                owner.received.append(("POST", self.path, body))
                try:
                    script = json.loads(body or b"{}")
                except ValueError:
                    script = {}
                if script.get("fast") is not True:
                    time.sleep(owner.delay)
                if script.get("drop") is True:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status = script.get("status", 201)
                if "raw" in script:
                    return self._answer(status, script["raw"].encode(), "text/plain")
                if status != 201:
                    error = {"message": script.get("message", f"scripted {status}"),
                             "exception": script.get("exception", "ScriptedException")}
                    extra = {"Retry-After": "1"} if status in (429, 503) else {}
                    return self._answer(status, json.dumps(error).encode(), extra=extra)
                task_id = script.get("marker", 1)
                parts = self.path.split("/")  # /genesys/1/cs/services/{id}/tasks/start
                service_id = parts[5] if len(parts) > 5 else "1"
                self._answer(201, json.dumps({"task_id": task_id}).encode(),
                             extra={"Location": f"/genesys/1/cs/service/{service_id}/tasks/{task_id}"})

            def do_GET(self):
                # The gateway's handshake on every new connection (GET {base}/store): a vendor
                # core has no such endpoint. Not a call of the test's, so not in `received`.
                if not self.path.endswith("/store"):
                    owner.received.append(("GET", self.path, b""))
                self._answer(404, b'{"message":"nothing here","exception":"NotFoundException"}')

            do_DELETE = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
