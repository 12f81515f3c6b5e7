#!/usr/bin/env python3
"""Capturing reverse proxy for SCEP (RFC 8894) traffic.  Standard library only.

Forwards every GET/POST it receives to an upstream SCEP server and stores each
exchange in --outdir as numbered files:

    NNN-<operation>-<method>.req.bin    request body. For POST this is the raw
                                        body (for PKIOperation: the DER
                                        pkiMessage). For GET PKIOperation it is
                                        the `message` query parameter,
                                        percent- then base64-decoded (the
                                        standard or the URL-safe alphabet,
                                        whichever the client used; noted in
                                        log.jsonl) i.e. the DER pkiMessage. For
                                        other GETs: the raw `message` parameter
                                        bytes (may be empty).
    NNN-<operation>-<method>.resp.bin   response body exactly as sent to the
                                        client (after any rewrite).
    NNN-<operation>-<method>.target.txt  the raw request target (path?query).
    NNN-<operation>-<method>.upstream.bin  only if the body was rewritten: the
                                        original upstream response body.
    log.jsonl                           one JSON line per exchange (method, path,
                                        query, status, content-type, file names).

Options:
    --caps-remove AES,SCEPStandard   drop these capability lines from every
                                     GetCACaps response (case-insensitive).
    --caps-replace "A\\nB"           replace the GetCACaps body entirely.

The proxy binds 127.0.0.1 on --port (0 = let the kernel choose) and writes the
actual port to --port-file once it is listening.  It stops after
--max-seconds (default 300) so it can never be left running for long.
"""
import argparse
import base64
import http.server
import json
import os
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

ARGS = None
LOCK = threading.Lock()
COUNTER = [0]


def _next_index():
    with LOCK:
        COUNTER[0] += 1
        return COUNTER[0]


def _rewrite_caps(body):
    if ARGS.caps_replace is not None:
        text = ARGS.caps_replace.encode().decode("unicode_escape")
        return text.encode("ascii")
    if not ARGS.caps_remove:
        return body
    drop = {c.strip().lower() for c in ARGS.caps_remove.split(",") if c.strip()}
    text = body.decode("ascii", "replace")
    # keep the original line separator
    sep = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(sep)
    kept = [ln for ln in lines if ln.strip().lower() not in drop]
    return sep.join(kept).encode("ascii")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quieter, to stderr
        sys.stderr.write("proxy: " + (fmt % args) + "\n")

    def _handle(self, method):
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        operation = query.get("operation", ["unknown"])[0] or "unknown"
        safe_op = "".join(ch for ch in operation if ch.isalnum()) or "unknown"
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""

        idx = _next_index()
        stem = "%03d-%s-%s" % (idx, safe_op, method)
        alphabet = None
        # the raw request target, exactly as received (query string included)
        with open(os.path.join(ARGS.outdir, stem + ".target.txt"), "w") as f:
            f.write(self.path)
        if method == "POST":
            req_bytes = body
        else:
            raw_msg = query.get("message", [""])[0]
            if operation == "PKIOperation":
                # parse_qs already percent-decoded; a literal '+' became ' '
                b64 = raw_msg.replace(" ", "+")
                b64 += "=" * (-len(b64) % 4)
                if "-" in b64 or "_" in b64:
                    alphabet = "base64url"
                    req_bytes = base64.b64decode(b64, altchars=b"-_", validate=True)
                else:
                    alphabet = "base64"
                    req_bytes = base64.b64decode(b64, validate=True)
            else:
                req_bytes = raw_msg.encode("utf-8")
        with open(os.path.join(ARGS.outdir, stem + ".req.bin"), "wb") as f:
            f.write(req_bytes)

        upstream_url = ARGS.upstream.rstrip("/") + self.path
        headers = {}
        for h in ("Content-Type",):
            if self.headers.get(h):
                headers[h] = self.headers.get(h)
        req = urllib.request.Request(
            upstream_url, data=body if method == "POST" else None,
            headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status = resp.status
                resp_body = resp.read()
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status = e.code
            resp_body = e.read()
            ctype = e.headers.get("Content-Type", "")

        original = resp_body
        if operation == "GetCACaps" and (ARGS.caps_remove or ARGS.caps_replace is not None):
            resp_body = _rewrite_caps(resp_body)
        with open(os.path.join(ARGS.outdir, stem + ".resp.bin"), "wb") as f:
            f.write(resp_body)
        rewritten = resp_body != original
        if rewritten:
            with open(os.path.join(ARGS.outdir, stem + ".upstream.bin"), "wb") as f:
                f.write(original)

        with LOCK, open(os.path.join(ARGS.outdir, "log.jsonl"), "a") as f:
            f.write(json.dumps({
                "index": idx, "method": method, "path": parsed.path,
                "query": parsed.query if operation != "PKIOperation" else
                "operation=PKIOperation" + ("&message=<%d bytes b64>" % len(req_bytes) if method == "GET" else ""),
                "operation": operation, "status": status,
                "content_type": ctype, "request_file": stem + ".req.bin",
                "get_message_alphabet": alphabet,
                "response_file": stem + ".resp.bin", "rewritten": rewritten,
            }) + "\n")

        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(resp_body)))
        self.end_headers()
        self.wfile.write(resp_body)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8080")
    p.add_argument("--outdir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--caps-remove", default="")
    p.add_argument("--caps-replace", default=None)
    p.add_argument("--max-seconds", type=float, default=300.0)
    ARGS = p.parse_args()
    os.makedirs(ARGS.outdir, exist_ok=True)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    port = srv.server_address[1]
    if ARGS.port_file:
        tmp = ARGS.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, ARGS.port_file)
    sys.stderr.write("proxy: listening on 127.0.0.1:%d -> %s\n" % (port, ARGS.upstream))
    timer = threading.Timer(ARGS.max_seconds, srv.shutdown)
    timer.daemon = True
    timer.start()
    try:
        srv.serve_forever()
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
