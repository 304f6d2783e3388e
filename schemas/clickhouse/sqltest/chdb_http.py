"""A ClickHouse HTTP endpoint over chDB, for tests only.

No ClickHouse server runs on the build machines, but the ClickHouse engine
does, in process, as chDB. This serves the part of ClickHouse's HTTP
interface clickhouse-go's HTTP protocol uses, so the real client (monitorme
migrate, the sink's batch inserts, the API's queries) can be run against the
real engine:

- POST / with the query as the body, or as ?query= with the insert's data
  (Native) as the body;
- ?database=, ?param_<name>= (query parameters, bound by the engine), and
  other parameters as settings of that query;
- answers in Native; errors as status 500 with the exception text.

One request at a time (chDB has one session per process). It is a test
double of the transport, not of the engine: every statement runs on chDB.

usage: chdb_http.py DB_DIR PORT_FILE
"""

import gzip
import os
import re
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from chdb import session

# URL parameters that are not query settings.
NOT_SETTINGS = {"database", "default_format", "client_protocol_version", "query_id", "quota_key", "query",
                "compress", "decompress", "enable_http_compression"}

lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sess = None
    scratch = None

    def log_message(self, fmt, *args):  # quiet: the test prints what matters
        pass

    def do_GET(self):
        # /ping, as a load balancer would ask
        self.reply(200, b"Ok.\n", "text/plain")

    def do_POST(self):
        url = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self.read_chunked()
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        params = {k[len("param_"):]: v for k, v in q.items() if k.startswith("param_")}
        settings = {k: v for k, v in q.items() if k not in NOT_SETTINGS and not k.startswith("param_")}
        with lock:
            try:
                out = self.run(q, body, params, settings)
                self.reply(200, out, "application/octet-stream")
            except Exception as e:  # the engine's exception, as ClickHouse reports it
                msg = str(e)
                code = re.search(r"Code: (\d+)", msg)
                self.send_response(500)
                self.send_header("X-ClickHouse-Exception-Code", code.group(1) if code else "1")
                data = (msg if msg.startswith("Code:") else "Code: 1. DB::Exception: " + msg).encode()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

    def read_chunked(self):
        data = b""
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    def run(self, q, body, params, settings):
        s = self.sess
        s.query("USE " + q["database"] if q.get("database") else "USE default")
        for k, v in settings.items():
            s.query(f"SET {k} = {quote(v)}")
        try:
            if "query" in q:
                return self.insert(q["query"], body, params)
            sql = body.decode()
            if sql.strip() == HELLO:
                return self.hello()
            out = s.query(sql, "Native", params=params)
            return out.bytes() if hasattr(out, "bytes") else bytes(out)
        finally:
            for k in settings:
                s.query(f"SET {k} = DEFAULT")

    def hello(self):
        """The client's first query, which it decodes as a server of its
        own protocol revision would write it. The revision answered is 0,
        the Native chDB writes, so every later answer decodes as chDB's."""
        version = self.sess.query("SELECT version()", "TSV").bytes().decode().strip()
        out = b"\x01\x00\x02\xff\xff\xff\xff\x00"  # block info
        out += b"\x04\x01"  # 4 columns, 1 row
        for name, typ, data in [("displayName()", "String", lp(b"chdb")), ("version()", "String", lp(version.encode())),
                                ("revision()", "UInt32", b"\x00\x00\x00\x00"), ("timezone()", "String", lp(b"UTC"))]:
            out += lp(name.encode()) + lp(typ.encode()) + b"\x00" + data
        return out

    def insert(self, sql, body, params):
        m = re.match(r"(?is)^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+Native\s*$", sql)
        if not m:
            raise ValueError("only INSERT ... FORMAT Native carries data: " + sql[:200])
        path = os.path.join(self.scratch, "insert.native")
        with open(path, "wb") as f:
            f.write(body)
        self.sess.query(f"{m.group(1)} SELECT * FROM file('{path}', Native)", "CSV", params=params)
        return b""

    def reply(self, status, data, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


HELLO = "SELECT displayName(), version(), revision(), timezone()"


def lp(b):
    """A Native string: its length as a varint, then its bytes."""
    n, out = len(b), b""
    while True:
        byte = n & 0x7F
        n >>= 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out + b


def quote(v):
    if re.fullmatch(r"-?\d+(\.\d+)?", v):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def main():
    db_dir, port_file = sys.argv[1], sys.argv[2]
    Handler.sess = session.Session(db_dir)
    Handler.scratch = tempfile.mkdtemp()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
