#!/usr/bin/python3
"""An HTTP receiver on 127.0.0.1 for the outbound webhook tests.

usage: webhook_receiver.py LOG

Prints the port it listens on, then records every request as one JSON line
in LOG (method, path, headers with lower-case names, body, and how many
requests were in progress with it) before it answers. The path says how to answer:
  /status/N        status N
  /redirect/N      302 to /redirect/N-1; /redirect/0 answers 200
  /to-ftp          302 to an ftp:// URL
  /to/URL          302 to URL (percent-encoded in the path)
  /big/N           200 with an N-byte body
  /stream/N        200 with an N-byte body of no announced length
  /hang/MS         answers 200 after MS milliseconds (a slow receiver)
  anything else    200
Exits when its standard input ends, so it never outlives the test.
"""
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
IN_FLIGHT = 0


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many posts connect at once

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up is expected
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def handle_any(self):
        global IN_FLIGHT
        with LOCK:
            IN_FLIGHT += 1
        self.counted = True
        try:
            self.answer()
        finally:
            self.done()

    # Before the answer goes out: the client may start its next request as
    # soon as it has it.
    def done(self):
        global IN_FLIGHT
        if self.counted:
            self.counted = False
            with LOCK:
                IN_FLIGHT -= 1

    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        with LOCK, open(self.server.log_path, "a", encoding="utf-8") as f:
            record = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
                "in_flight": IN_FLIGHT,
            }
            f.write(json.dumps(record) + "\n")

        parts = self.path.split("?")[0].strip("/").split("/")
        arg = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        status, headers, payload = 200, {}, b"ok"
        if parts[0] == "status":
            status = arg
        elif parts[0] == "redirect" and arg > 0:
            status, headers = 302, {"Location": f"/redirect/{arg - 1}"}
        elif parts[0] == "to-ftp":
            status, headers = 302, {"Location": "ftp://127.0.0.1/x"}
        elif parts[0] == "to" and len(parts) > 1:
            status, headers = 302, {"Location": urllib.parse.unquote(parts[1])}
        elif parts[0] == "big":
            payload = b"x" * arg
        elif parts[0] == "hang":
            time.sleep(arg / 1000)
        elif parts[0] == "stream":
            payload = b"x" * arg
            headers = {"Connection": "close"}
            self.close_connection = True
        self.done()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        if parts[0] != "stream":
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main():
    server = Server(("127.0.0.1", 0), Handler)
    server.log_path = sys.argv[1]
    print(server.server_address[1], flush=True)
    server.serve_forever()


def exit_with_parent():
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    threading.Thread(target=exit_with_parent, daemon=True).start()
    main()
