"""Stands in for the exams office's inbox: prints every notification Apprise's `json://` posts.

    python3 examples/exams/inbox.py 9099
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Inbox(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        note = json.loads(body or b"{}")
        print(f"{self.path}: {note.get('title')}\n    {note.get('message')}", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        return


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9099
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    HTTPServer(("127.0.0.1", port), Inbox).serve_forever()
