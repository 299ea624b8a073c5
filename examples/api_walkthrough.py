"""An integrator's script, outside the app: it knows METS only through the published OpenAPI document and a token.

    python examples/api_walkthrough.py --base https://help.example.com --token <api token> \
        --secret whsec_... --listen 127.0.0.1:8099 [--reply "We are on it."]

1. Reads `<base>/api/v1/openapi.json` and finds the operations it needs by their operationId (`list_tickets`,
   `add_reply`), checking that the list documents the `sla` filter with its `breached` value.
2. Lists the token owner's breached tickets (every page, following `next_cursor`).
3. Replies to the first of them.
4. Listens on `--listen` for the webhook METS sends for that reply (a webhook endpoint subscribed to
   `ticket.reply_added` must point at `http://<listen>/hook`, with `--secret` its signing secret), verifies its
   Standard Webhooks signature with the `standardwebhooks` package, and prints what it got.

It uses the standard library and `standardwebhooks` only; it prints one line per step and exits 0 when the signed
webhook for its own reply arrived, 1 otherwise.
"""
import argparse
import json
import queue
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import standardwebhooks


class Api:
    """Calls operations by operationId, as the published document describes them."""

    def __init__(self, base: str, token: str):
        self.base, self.token = base.rstrip("/"), token
        self.document = self._call("GET", "/api/v1/openapi.json", auth=False)
        self.operations = {op["operationId"]: (method.upper(), path, op)
                           for path, ops in self.document["paths"].items() for method, op in ops.items()}

    def _call(self, method: str, path: str, body: dict | None = None, auth: bool = True):
        request = urllib.request.Request(self.base + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("Accept", "application/json")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as error:  # a problem document (RFC 9457): say what it says
            problem = json.loads(error.read() or b"{}")
            sys.exit(f"{method} {path}: {error.code} {problem.get('title')}: {problem.get('detail')} "
                     f"{problem.get('errors') or ''}")

    def parameter(self, operation_id: str, name: str) -> dict:
        _method, _path, op = self.operations[operation_id]
        return next(p for p in op.get("parameters", []) if p["name"] == name)

    def call(self, operation_id: str, path_values: dict | None = None, query: dict | None = None,
             body: dict | None = None):
        method, path, _op = self.operations[operation_id]
        for name, value in (path_values or {}).items():
            path = path.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self._call(method, path, body)


def receiver(listen: str) -> tuple[ThreadingHTTPServer, queue.Queue]:
    """An HTTP server on `listen` that queues every POST to /hook as (headers, body)."""
    host, port = listen.rsplit(":", 1)
    got: queue.Queue = queue.Queue()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.put(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):  # quiet: the script prints its own lines
            pass

    server = ThreadingHTTPServer((host, int(port)), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="METS's address, e.g. https://help.example.com")
    parser.add_argument("--token", required=True, help="an API token (your profile page)")
    parser.add_argument("--secret", required=True, help="the webhook endpoint's whsec_ signing secret")
    parser.add_argument("--listen", default="127.0.0.1:8099", help="host:port the endpoint's URL points at")
    parser.add_argument("--reply", default="We are on it and will update you within the hour.")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the webhook")
    args = parser.parse_args()

    server, got = receiver(args.listen)  # listening before the reply, so its webhook cannot come too early
    try:
        api = Api(args.base, args.token)
        print(f"openapi: {api.document['openapi']}, {len(api.operations)} operations")
        sla = api.parameter("list_tickets", "sla")
        if "breached" not in sla["schema"].get("enum", []):
            sys.exit("the document's list_tickets has no sla=breached filter")

        breached, cursor = [], None
        while True:
            page = api.call("list_tickets", query={"sla": "breached", **({"cursor": cursor} if cursor else {})})
            breached += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        print(f"breached: {len(breached)} {' '.join(t['number'] for t in breached)}")
        if not breached:
            return 1

        ticket = breached[0]
        reply = api.call("add_reply", {"number": ticket["number"]}, body={"body": args.reply})
        print(f"replied: {ticket['number']} reply {reply['id']}")

        verifier = standardwebhooks.Webhook(args.secret)
        while True:
            try:
                headers, body = got.get(timeout=args.timeout)
            except queue.Empty:
                print(f"webhook: none within {args.timeout:.0f} s")
                return 1
            event = verifier.verify(body, headers)  # raises on a bad signature or an old timestamp
            data = event.get("data", {})
            if event.get("type") == "ticket.reply_added" and data.get("reply", {}).get("id") == reply["id"]:
                print(f"webhook: {event['type']} {data['ticket']['number']} verified ({headers['webhook-id']})")
                return 0
            print(f"webhook: {event.get('type')} (not ours, waiting on)")
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
