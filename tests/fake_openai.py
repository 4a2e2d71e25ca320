"""The plumbing of a fake OpenAI-compatible server (tests and perf scripts): a quiet JSON
handler, the two answers every client asks for, and a server on a free port in a thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    """Subclass it with ``do_GET``/``do_POST``; ``model`` names the one model served."""

    model = "fake"

    def log_message(self, *args: Any) -> None:
        pass  # a test's output is not the place for an access log

    def read_json(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def send_json(self, payload: Any, status: int = 200) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # GET /v1/models: the client's first question
        self.send_json({"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}]})

    def completion(self, text: str, completion_tokens: int = 1, finish_reason: str = "stop") -> dict[str, Any]:
        """A /v1/completions answer with one choice."""
        return {"id": "c", "object": "text_completion", "created": 0, "model": self.model,
                "choices": [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}],
                "usage": {"prompt_tokens": 1, "completion_tokens": completion_tokens,
                          "total_tokens": completion_tokens + 1}}


@contextmanager
def serving(handler: type[JsonHandler], backlog: int = 64) -> Iterator[str]:
    """Serve ``handler`` on a free local port in a daemon thread; yields the ``/v1`` URL."""

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = backlog

    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
