"""Low-level network errors in plain words: real errors in, a sentence naming the host out.

Each error is made for real where that is cheap (a closed loopback port, a ``.invalid`` name, TLS servers on
loopback with an untrusted, a mismatched or an expired certificate, a server that resets or stays silent),
then fed to :func:`describe_os_error` directly and through the boundaries that show it to people (LAN
signaling, the REST client, XMPP, the connector, the PAC loader).
"""

from __future__ import annotations

import asyncio
import datetime
import errno
import os
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from coalesce_cloud.servers.certs import issue_server_cert, make_ca
from coalesce_common.cloud.rest import CloudClient, CloudError
from coalesce_common.errors import CoalesceError, SignalingError
from coalesce_common.net.connector import ProxyConnectError, open_socket
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver, ProxySettingsError
from coalesce_common.net.why import describe_ca_file_error, describe_os_error
from coalesce_common.signaling import websocket
from coalesce_common.signaling.xmpp import XmppAccount, XmppSignaling
from coalesce_common.tls import load_or_create_identity, server_context

UNKNOWN_NAME = "no-such-host.invalid"  # RFC 6761: never resolves, and fails without asking the network
FORBIDDEN = (
    "Errno",
    "errno",
    "Error:",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "TimeoutError",
    "gaierror",
    "SSLCertVerificationError",
    "SSLError",
    "OSError",
    "ConnectError",
    "_ssl.c",
)

Serve = Callable[[ssl.SSLContext | None], Awaitable[int]]


def assert_plain(sentence: str, host: str) -> None:
    """Says it in words: names the host, and carries no errno and no class name."""
    assert host in sentence, sentence
    for word in FORBIDDEN:
        assert word not in sentence, (word, sentence)


# --------------------------------------------------------------------------------------- real errors


async def connect_error(host: str, port: int, ctx: ssl.SSLContext | None = None) -> BaseException:
    try:
        _, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host if ctx else None)
    except Exception as exc:
        return exc
    writer.close()
    raise AssertionError(f"connecting to {host}:{port} worked")


@pytest.fixture
async def serve_tcp() -> AsyncIterator[Serve]:
    """Start a loopback server that holds every connection open (TLS if given a context); returns the port."""
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    async def start(ctx: ssl.SSLContext | None) -> int:
        server = await asyncio.start_server(hold, "127.0.0.1", 0, ssl=ctx)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for writer in writers:
        writer.close()
    for server in servers:
        server.close()
        await server.wait_closed()


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    return server_context(load_or_create_identity(tmp_path / "identity"))


def trusting(ca_file: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(str(ca_file))
    return ctx


def expired_certificate(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for 127.0.0.1 that expired yesterday, and the file to trust it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "expired.crt", tmp_path / "expired.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx, cert_file


# ------------------------------------------------------------------------------ describe_os_error


async def test_a_closed_port_says_nothing_is_listening(free_tcp_port: int) -> None:
    exc = await connect_error("127.0.0.1", free_tcp_port)
    assert isinstance(exc, ConnectionRefusedError)
    sentence = describe_os_error(exc, "127.0.0.1", free_tcp_port, peer="the room display")
    assert_plain(sentence, f"127.0.0.1:{free_tcp_port}")
    assert "nothing is listening" in sentence and "the room display is running" in sentence


async def test_an_unknown_name_says_it_could_not_be_found() -> None:
    exc = await connect_error(UNKNOWN_NAME, 443)
    assert isinstance(exc, socket.gaierror)
    sentence = describe_os_error(exc, UNKNOWN_NAME, 443)
    assert_plain(sentence, UNKNOWN_NAME)
    assert "could not be found" in sentence and "spelling" in sentence


async def test_a_self_signed_certificate_is_not_trusted(serve_tcp: Serve, tmp_path: Path) -> None:
    port = await serve_tcp(await asyncio.to_thread(self_signed, tmp_path))
    exc = await connect_error("127.0.0.1", port, ssl.create_default_context())
    assert isinstance(exc, ssl.SSLCertVerificationError)
    sentence = describe_os_error(exc, "127.0.0.1", port, how_to_trust="with --ca FILE")
    assert_plain(sentence, "127.0.0.1")
    assert "is not trusted" in sentence and sentence.endswith("give its CA certificate with --ca FILE")


async def test_a_certificate_for_another_name_says_so(serve_tcp: Serve, tmp_path: Path) -> None:
    def files() -> tuple[ssl.SSLContext, Path]:
        ca = make_ca(tmp_path / "ca")
        leaf = issue_server_cert(ca, tmp_path / "leaf", "other", ["other.example"])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(leaf.cert, leaf.key)
        return ctx, ca.cert

    ctx, ca_cert = await asyncio.to_thread(files)  # certificate files, written off the loop
    port = await serve_tcp(ctx)
    exc = await connect_error("127.0.0.1", port, await asyncio.to_thread(trusting, ca_cert))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    sentence = describe_os_error(exc, "127.0.0.1", port)
    assert_plain(sentence, "127.0.0.1")
    assert "made out to another name" in sentence


async def test_an_expired_certificate_says_so(serve_tcp: Serve, tmp_path: Path) -> None:
    ctx, cert_file = await asyncio.to_thread(expired_certificate, tmp_path)
    port = await serve_tcp(ctx)
    exc = await connect_error("localhost", port, await asyncio.to_thread(trusting, cert_file))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    sentence = describe_os_error(exc, "localhost", port)
    assert_plain(sentence, "localhost")
    assert "has expired" in sentence


async def test_tls_to_a_port_that_does_not_speak_it(tmp_path: Path) -> None:
    async def answer_in_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer_in_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        exc = await connect_error("127.0.0.1", port, ssl.create_default_context())
    assert isinstance(exc, ssl.SSLError | ConnectionResetError)
    sentence = describe_os_error(exc, "127.0.0.1", port)
    assert_plain(sentence, f"127.0.0.1:{port}")
    assert "TLS" in sentence or "closed the connection" in sentence


async def test_a_reset_connection_says_it_was_closed() -> None:
    async def reset(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with pytest.raises(ConnectionResetError) as caught:
            while await reader.read(1024):  # the RST arrives as an error, never as data
                pass
            raise AssertionError("the server closed cleanly instead of resetting")
        writer.close()
    sentence = describe_os_error(caught.value, "127.0.0.1", port)
    assert_plain(sentence, f"127.0.0.1:{port}")
    assert "closed the connection" in sentence


async def test_a_silent_server_did_not_answer_in_time(serve_tcp: Serve) -> None:
    port = await serve_tcp(None)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises(TimeoutError) as caught:
        await asyncio.wait_for(reader.read(1), 0.05)  # the server never writes: this is the timeout itself
    writer.close()
    sentence = describe_os_error(caught.value, "127.0.0.1", port)
    assert_plain(sentence, f"127.0.0.1:{port}")
    assert "did not answer in time" in sentence


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENETUNREACH, "cannot be reached from this network"),
        (errno.EHOSTUNREACH, "cannot be reached from this network"),
        (errno.EPERM, "firewall does not allow"),
        (errno.EADDRNOTAVAIL, "the connection to"),  # no sentence of its own: the generic one
    ],
)
def test_routing_and_firewall_errors(code: int, expected: str) -> None:
    # Made by hand: a real "no route" needs a machine without one, which a test cannot arrange cheaply.
    exc = OSError(code, os.strerror(code))
    sentence = describe_os_error(exc, "2001:db8::1", 443)
    assert_plain(sentence, "[2001:db8::1]:443")
    assert expected in sentence


async def test_errors_wrapped_by_httpx_are_unwrapped(
    free_tcp_port: int, serve_tcp: Serve, tmp_path: Path
) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError) as refused:
            await http.get(f"http://127.0.0.1:{free_tcp_port}/")
        port = await serve_tcp(await asyncio.to_thread(self_signed, tmp_path))
        with pytest.raises(httpx.ConnectError) as untrusted:
            await http.get(f"https://127.0.0.1:{port}/")
    assert "nothing is listening" in describe_os_error(refused.value, "127.0.0.1", free_tcp_port)
    assert "is not trusted" in describe_os_error(untrusted.value, "127.0.0.1", port)


def test_ca_files_that_cannot_be_used(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = {
        tmp_path / "missing.pem": "there is no file",
        tmp_path: "is a folder",
        garbage: "no PEM certificate",
    }
    for path, expected in cases.items():
        ctx = ssl.create_default_context()
        with pytest.raises((OSError, ssl.SSLError)) as caught:
            ctx.load_verify_locations(str(path))
        sentence = describe_ca_file_error(caught.value, str(path))
        assert_plain(sentence, str(path))
        assert expected in sentence


# -------------------------------------------------------------------------------------- boundaries


async def test_lan_signaling_to_a_closed_port(free_tcp_port: int) -> None:
    with pytest.raises(SignalingError) as caught:
        await websocket.connect("127.0.0.1", free_tcp_port, timeout=5)
    message = str(caught.value)
    assert_plain(message, f"127.0.0.1:{free_tcp_port}")
    assert message.startswith("Could not reach the receiver: nothing is listening")


async def test_lan_signaling_to_an_unknown_name() -> None:
    with pytest.raises(SignalingError) as caught:
        await websocket.connect(UNKNOWN_NAME, 443, timeout=5)
    assert_plain(str(caught.value), UNKNOWN_NAME)
    assert "could not be found" in str(caught.value)


async def test_lan_signaling_to_something_that_is_not_a_receiver(tmp_path: Path) -> None:
    def not_found(connection: ServerConnection, _request: Request) -> Response:
        return connection.respond(404, "no such thing\n")

    context = await asyncio.to_thread(self_signed, tmp_path)
    async with serve(
        lambda _ws: asyncio.sleep(0), "127.0.0.1", 0, ssl=context, process_request=not_found
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        with pytest.raises(SignalingError) as caught:
            await websocket.connect("127.0.0.1", port, timeout=5)
    assert_plain(str(caught.value), f"127.0.0.1:{port}")
    assert "answered HTTP 404, not as a Coalesce receiver" in str(caught.value)


async def test_the_connector_names_each_failed_hop(free_tcp_port: int) -> None:
    with pytest.raises(ProxyConnectError) as caught:
        await open_socket("127.0.0.1", free_tcp_port, ProxyResolver(ProxyConfig(mode="none")), timeout=5)
    assert_plain(str(caught.value), f"127.0.0.1:{free_tcp_port}")
    assert "DIRECT: nothing is listening" in str(caught.value)


async def test_the_rest_client_says_why_it_cannot_reach_the_cloud(
    free_tcp_port: int, serve_tcp: Serve, tmp_path: Path
) -> None:
    direct = ProxyResolver(ProxyConfig(mode="none"))
    async with CloudClient(f"https://127.0.0.1:{free_tcp_port}", resolver=direct) as api:
        with pytest.raises(CloudError) as refused:
            await api.turn_credentials()
    assert refused.value.code == "unreachable"
    assert_plain(str(refused.value), f"127.0.0.1:{free_tcp_port}")

    port = await serve_tcp(await asyncio.to_thread(self_signed, tmp_path))
    async with CloudClient(f"https://127.0.0.1:{port}", resolver=direct) as api:
        with pytest.raises(CloudError) as untrusted:
            await api.turn_credentials()
    assert untrusted.value.code == "unreachable"
    assert_plain(str(untrusted.value), "127.0.0.1")
    assert "is not trusted" in str(untrusted.value)

    with pytest.raises(CloudError) as bad_ca:
        CloudClient("https://127.0.0.1", ca_file=str(tmp_path / "missing.pem"))
    assert bad_ca.value.code == "bad_ca_file" and "there is no file" in str(bad_ca.value)


async def test_xmpp_says_why_it_cannot_reach_the_cloud(
    free_tcp_port: int, serve_tcp: Serve, tmp_path: Path
) -> None:
    direct = ProxyResolver(ProxyConfig(mode="none"))
    closed = XmppAccount("dev@coalesce.test", "pw", "127.0.0.1", free_tcp_port)
    port = await serve_tcp(await asyncio.to_thread(self_signed, tmp_path))
    untrusted = XmppAccount("dev@coalesce.test", "pw", "127.0.0.1", port, direct_tls=True)
    messages = []
    for account in (closed, untrusted):
        stream = XmppSignaling(account, resolver=direct)
        with pytest.raises(CoalesceError) as caught:
            await stream.connect(10)
        await stream.aclose()
        messages.append(str(caught.value))
    assert_plain(messages[0], f"127.0.0.1:{free_tcp_port}")
    assert "nothing is listening" in messages[0]
    assert_plain(messages[1], "127.0.0.1")
    assert messages[1].startswith("Cannot reach the cloud's XMPP service: the certificate of 127.0.0.1")


async def test_an_unreachable_pac_server_is_said_in_words(free_tcp_port: int) -> None:
    resolver = ProxyResolver(ProxyConfig(mode="pac", pac=f"http://127.0.0.1:{free_tcp_port}/proxy.pac"))
    with pytest.raises(ProxySettingsError) as caught:
        await resolver.resolve("a", 443)
    assert_plain(str(caught.value), f"127.0.0.1:{free_tcp_port}")
    assert "nothing is listening" in str(caught.value) and "the PAC server is running" in str(caught.value)
