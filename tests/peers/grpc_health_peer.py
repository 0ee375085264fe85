"""A third-party peer for the integration tests: Python grpcio (grpc-core, the C++
gRPC stack) with grpcio-health-checking's standard Health servicer, over TLS that
requires a client certificate. grpc-core refuses a client certificate silently: after
the handshake it closes, without an alert (SPEC §4).

    python3 tests/peers/grpc_health_peer.py CHAIN.pem KEY.pem CA.pem [grpc|http1]

`grpc`: the Health service with "" and "prod.v1.Api" SERVING and "prod.v1.Down"
NOT_SERVING (any other service: NOT_FOUND). `http1`: Python's own HTTPS server, which
speaks only HTTP/1.1 (ALPN "http/1.1"), answering 200 to everything. Prints
"LISTENING <port>" once bound on 127.0.0.1 (the readiness signal), serves until killed.
"""

import http.server
import os
import ssl
import sys
from concurrent import futures

# grpc-core logs every refused handshake at INFO: keep the test output readable.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def serve_grpc(chain: bytes, key: bytes, ca: bytes) -> None:
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("prod.v1.Api", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("prod.v1.Down", health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    creds = grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=ca, require_client_auth=True
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    print(f"LISTENING {port}", flush=True)
    server.wait_for_termination()


class Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    do_GET = do_POST

    def log_message(self, *args) -> None:
        pass


def serve_http1(chain_file: str, key_file: str, ca_file: str) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain_file, key_file)
    ctx.load_verify_locations(ca_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["http/1.1"])
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    print(f"LISTENING {httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


def main() -> None:
    chain_file, key_file, ca_file = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else "grpc"
    if mode == "http1":
        serve_http1(chain_file, key_file, ca_file)
        return
    with open(chain_file, "rb") as c, open(key_file, "rb") as k, open(ca_file, "rb") as a:
        serve_grpc(c.read(), k.read(), a.read())


if __name__ == "__main__":
    main()
