"""https endpoints: certificates are verified by default; --cacert and
--insecure are the two ways to accept a self-signed one.

A TLS front (Python ssl) relays to the plain simulator, so the API spoken
over TLS is the same as everywhere else in the suite.
"""
import http.server
import shutil
import socketserver
import ssl
import threading
import urllib.request

import pytest

from conftest import SEED_JOB, run

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl(1) is needed")


def make_cert(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)], check=True, timeout=60)
    return key, cert


class TLSRelay:
    """Serves https on 127.0.0.1:PORT, forwarding each request to the simulator."""

    def __init__(self, key, cert, upstream):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                req = urllib.request.Request(upstream + self.path, data=body, method=self.command)
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, data, ctype = r.status, r.read(), r.headers.get("Content-Type")
                except urllib.error.HTTPError as e:
                    status, data, ctype = e.code, e.read(), e.headers.get("Content-Type")
                self.send_response(status)
                self.send_header("Content-Type", ctype or "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls(tmp_path, sim):
    key, cert = make_cert(tmp_path)
    relay = TLSRelay(key, cert, sim.bacalhau_url)
    yield relay, cert
    relay.close()


def mount_https(mount_factory, url, *args):
    class Https:
        bacalhau_url = url
        muse_url = url + "/api/"
    return mount_factory(Https, "--poll-interval=0", "--timeout=5", *args)


def test_self_signed_refused_by_default(tls, mount_factory):
    relay, _ = tls
    m = mount_https(mount_factory, relay.url)
    r = run(["cat", m.p("jobs", SEED_JOB, "state")])
    assert r.returncode != 0 and "Protocol error" in r.stderr, r.stderr
    with open(m.p(".jobfs", "status")) as f:
        assert "reachable: no" in f.read()


def test_cacert_accepts_it(tls, mount_factory):
    relay, cert = tls
    m = mount_https(mount_factory, relay.url, f"--cacert={cert}")
    assert run(["cat", m.p("jobs", SEED_JOB, "state")], check=True).stdout == "Completed\n"


def test_insecure_accepts_it(tls, mount_factory):
    relay, _ = tls
    m = mount_https(mount_factory, relay.url, "--insecure")
    assert run(["cat", m.p("jobs", SEED_JOB, "state")], check=True).stdout == "Completed\n"
