"""The development CA and server certificates: names, key modes, chain, and reuse of existing files."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

from cryptography import x509

from coalesce_cloud.servers.certs import issue_server_cert, make_ca


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_server_certificate_has_the_names_and_private_keys(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    cert = issue_server_cert(ca, tmp_path, "xmpp", ["coalesce.test", "localhost", "127.0.0.1", "::1"])
    assert _mode(ca.key) == _mode(cert.key) == _mode(cert.combined) == 0o600
    leaf = x509.load_pem_x509_certificate(cert.cert.read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["coalesce.test", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    combined = cert.combined.read_text()
    assert combined.count("BEGIN CERTIFICATE") == 2 and "BEGIN PRIVATE KEY" in combined


def test_make_and_issue_reuse_what_still_fits(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    ca_pem = ca.cert.read_bytes()
    first = issue_server_cert(ca, tmp_path, "turn", ["localhost", "127.0.0.1"])
    first_pem = first.cert.read_bytes()
    assert make_ca(tmp_path).cert.read_bytes() == ca_pem
    assert issue_server_cert(ca, tmp_path, "turn", ["localhost", "127.0.0.1"]).cert.read_bytes() == first_pem
    # Other names: a new certificate.
    assert issue_server_cert(ca, tmp_path, "turn", ["localhost"]).cert.read_bytes() != first_pem


def test_a_tls_client_trusting_the_ca_accepts_the_server(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    cert = issue_server_cert(ca, tmp_path, "server", ["localhost", "127.0.0.1"])
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert.cert, cert.key)
    client_context = ssl.create_default_context(cafile=str(ca.cert))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            connection, _ = listener.accept()
            with server_context.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"ok")

        thread = threading.Thread(target=serve)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.recv(2) == b"ok"
        thread.join(5)
