#!/usr/bin/env python3
"""A loopback HTTP file server with byte ranges, for tests of http:// inputs and downloads.

    python3 range_http_server.py FOLDER PORT [--cut BYTES] [--ignore-range] [--log FILE]

Python's http.server ignores Range headers; FFmpeg seeks in MP4 files over HTTP with them,
as it does against any real web server, so this one answers them (single ranges only).
--cut closes the connection after BYTES bytes of the first response for each file (a
download broken off); --ignore-range answers every request with the whole file, as some
servers do; --log appends "PATH RANGE" for each request.
"""
import argparse
import http.server
import os
import re
import sys
import threading

OPTIONS = None
CUT_DONE = set()
LOCK = threading.Lock()


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.translate_path(self.path)
        if OPTIONS.log:
            with LOCK, open(OPTIONS.log, "a") as log:
                log.write(f"{self.path} {self.headers.get('Range', '-')}\n")
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        match = re.match(r"bytes=(\d*)-(\d*)$", self.headers.get("Range", ""))
        if OPTIONS.ignore_range:
            match = None
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = int(match.group(2)) if match.group(2) else size - 1
            else:
                start = max(0, size - int(match.group(2)))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return
            end = min(end, size - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        with LOCK:
            cut = OPTIONS.cut if OPTIONS.cut is not None and path not in CUT_DONE else None
            CUT_DONE.add(path)
        with open(path, "rb") as f:
            f.seek(start)
            remaining = end - start + 1 if cut is None else min(cut, end - start + 1)
            try:
                while remaining > 0:
                    chunk = f.read(min(65536, remaining))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("port", type=int)
    parser.add_argument("--cut", type=int)
    parser.add_argument("--ignore-range", action="store_true")
    parser.add_argument("--log")
    OPTIONS = parser.parse_args()
    os.chdir(OPTIONS.folder)
    http.server.ThreadingHTTPServer(("127.0.0.1", OPTIONS.port), RangeHandler).serve_forever()
