"""The ``coalesce-cloud`` command.

``up``     a whole cloud on this machine (CA, ejabberd, coturn, REST API) for development and demos;
``serve``  the REST API alone against ejabberd and coturn run elsewhere (the production shape);
``admin``  enrollment codes and device suspend/revoke/restore through the admin API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from coalesce_cloud.admin_cli import admin_main
from coalesce_cloud.core.config import DEFAULT_API_PORT
from coalesce_cloud.stack import RELAY_PORTS, LocalCloud, StackPorts
from coalesce_common.errors import CoalesceError

logger = logging.getLogger("coalesce_cloud")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coalesce-cloud", description="The Coalesce cloud.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up",
        help="run a whole cloud on this machine (CA, ejabberd, coturn, REST API)",
        description="Run a whole cloud on this machine: a CA and certificates, ejabberd, coturn and the "
        "REST API. Ctrl-C (or SIGTERM) stops everything; if this command is killed, its servers die too.",
        epilog=UP_PORTS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--state-dir", type=Path, required=True, help="where certificates, secrets and data live")
    up.add_argument(
        "--host", default="127.0.0.1", help="address every service listens on (default 127.0.0.1)"
    )
    up.add_argument("--domain", default="coalesce.test", help="XMPP domain (default coalesce.test)")
    up.add_argument(
        "--api-port",
        type=int,
        default=DEFAULT_API_PORT,
        help=f"REST API over HTTPS (default {DEFAULT_API_PORT})",
    )
    up.add_argument("--xmpp-port", type=int, default=5222, help="XMPP with STARTTLS (default 5222)")
    up.add_argument("--xmpp-tls-port", type=int, default=5223, help="XMPP with direct TLS (default 5223)")
    up.add_argument(
        "--xmpp-websocket-port",
        type=int,
        default=5443,
        help="XMPP over WebSocket with TLS, for the browser sharing page (default 5443)",
    )
    up.add_argument("--turn-port", type=int, default=3478, help="STUN/TURN over UDP and TCP (default 3478)")
    up.add_argument(
        "--turn-tls-port",
        type=int,
        default=5349,
        help="TURN over TLS (default 5349; 443 in production)",
    )
    up.add_argument(
        "--relay-ports",
        type=_port_range,
        metavar="MIN-MAX",
        help=f"UDP ports coturn relays media from (default: {RELAY_PORTS} ports between 49160 and 53200)",
    )
    up.add_argument(
        "--xmpp-admin-port",
        type=int,
        default=0,
        help="ejabberd's admin API, on 127.0.0.1 only (default: a free port)",
    )
    up.add_argument(
        "--erlang-dist-port",
        type=int,
        default=0,
        help="Erlang distribution (ejabberdctl talks to ejabberd by it), on 127.0.0.1 only (default: free)",
    )
    serve = sub.add_parser("serve", help="run the REST API only, against external ejabberd and coturn")
    serve.add_argument("--config", type=Path, help="settings file (TOML or JSON); env COALESCE_CLOUD_* too")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")
    serve.add_argument("--port", type=int, default=443, help="HTTPS port (default 443)")
    sub.add_parser("admin", help="admin commands (see coalesce-cloud admin --help)", add_help=False)
    return parser


UP_PORTS_HELP = """\
ports: every one is printed at start (and written to STATE_DIR/cloud.json), each bound to --host except
the two control ports, which are on 127.0.0.1 whatever --host is:
  --api-port          TCP      REST API (HTTPS)
  --xmpp-port         TCP      XMPP, STARTTLS required
  --xmpp-tls-port     TCP      XMPP, direct TLS
  --xmpp-websocket-port TCP    XMPP over WebSocket (TLS), for the browser sharing page
  --turn-port         TCP+UDP  STUN/TURN
  --turn-tls-port     TCP      TURN over TLS
  --relay-ports       UDP      TURN relay ports, opened per allocation
  --xmpp-admin-port   TCP      ejabberd's admin API (127.0.0.1 only)
  --erlang-dist-port  TCP      Erlang distribution (127.0.0.1 only)
There is no epmd, no XMPP component port and no server-to-server port."""


def _port_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port range: write it as MIN-MAX, e.g. 49160-49200"
        ) from None
    if not 0 < first <= last <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port range: MIN and MAX must be ports (1-65535) with MIN <= MAX"
        )
    return first, last


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["admin"]:
        return admin_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "up":
            return asyncio.run(_up(args))
        return _serve(args)
    except CoalesceError as exc:
        print(f"coalesce-cloud: {exc}", file=sys.stderr)
        return 2


async def _up(args: argparse.Namespace) -> int:
    ports = StackPorts(
        api=args.api_port,
        xmpp_starttls=args.xmpp_port,
        xmpp_tls=args.xmpp_tls_port,
        xmpp_websocket=args.xmpp_websocket_port,
        turn=args.turn_port,
        turn_tls=args.turn_tls_port,
        xmpp_admin_api=args.xmpp_admin_port,
        erlang_dist=args.erlang_dist_port,
    )
    if args.relay_ports is not None:
        ports.relay_min, ports.relay_max = args.relay_ports
    cloud = LocalCloud(args.state_dir.resolve(), host=args.host, domain=args.domain, ports=ports)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with cloud:
        print(f"cloud up: REST API {cloud.api_url}", flush=True)
        print(f"  CA certificate (give to devices with --ca): {cloud.ca_file}", flush=True)
        print(f"  sharing from a browser: {cloud.share_page_url}", flush=True)
        print(f"  admin token: in {cloud.state_dir / 'admin-token'}", flush=True)
        print("  listening on (every port this cloud opens):", flush=True)
        for listener in cloud.listeners():
            print(f"    {listener!s:<28} {listener.purpose}", flush=True)
        print(
            "  enroll a device: coalesce-cloud admin enroll-code --org ORG, then "
            f"coalesce enroll {cloud.api_url} CODE --ca {cloud.ca_file}",
            flush=True,
        )
        print("Press Ctrl-C to stop.", flush=True)
        await stop.wait()
        print("stopping…", flush=True)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from coalesce_cloud.api.app import create_app
    from coalesce_cloud.core.config import Settings
    from coalesce_common.tls import policy_context_factory

    settings = Settings(config_file=args.config) if args.config else Settings()
    if settings.tls_cert is None or settings.tls_key is None:
        print(
            "coalesce-cloud: serve needs tls_cert and tls_key in the settings (HTTPS only)", file=sys.stderr
        )
        return 2
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        ssl_certfile=str(settings.tls_cert),
        ssl_keyfile=str(settings.tls_key),
        ssl_context_factory=policy_context_factory,
        proxy_headers=True,
    )
    return 0
