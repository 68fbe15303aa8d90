"""``coalesce-cloud admin ...``: the admin REST API from the command line.

    coalesce-cloud admin [--url URL] [--admin-token TOKEN] [--ca FILE] [--json] COMMAND
      enroll-code --org ORG [--uses N] [--ttl DURATION]   a code for enrolling devices (shown once)
      devices [--org ORG]                                 every device and its status
      suspend DEVICE (--until ISO-TIME | --for DURATION)  cut a device off until then
      revoke DEVICE                                       cut a device off for good
      restore DEVICE                                      lift a suspension
      orgs                                                organisations, and whose senders join their meetings
      allow-guests ORG --from GUEST_ORG                   let GUEST_ORG's senders join ORG's meetings
      deny-guests ORG --from GUEST_ORG                    stop them again
      web-guests ORG (--on | --off)                       let browsers share to ORG's rooms, or not
      suspend-org ORG / restore-org ORG                   stop an organisation's web guests, or restore it
      audit [--device DEVICE] [--limit N]                 who did what, newest first

The token comes from ``--admin-token`` or, better (command lines are visible to other users),
``COALESCE_CLOUD_ADMIN_TOKEN``; the URL from ``--url`` or ``COALESCE_CLOUD_URL``. ``--ca FILE`` trusts
that CA only (without it, the system's CAs). Durations: ``90``, ``90s``, ``15m``, ``1h30m``, ``7d``.
Exit status: 0 done, 1 refused or unreachable, 2 usage. The token is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx

from coalesce_cloud.core.config import DEFAULT_API_PORT
from coalesce_cloud.errors import CloudServiceError
from coalesce_common.net.why import describe_ca_file_error, describe_os_error

DEFAULT_URL = f"https://localhost:{DEFAULT_API_PORT}"
API_PREFIX = "/api/v1"
TIMEOUT = 30.0
_DEFAULT_PORTS = {"https": 443, "http": 80}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


class AdminCliError(CloudServiceError):
    """Something the admin must fix; the message says what."""


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 1h30m or 7d")
    days, hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if duration <= timedelta(0):
        raise argparse.ArgumentTypeError("the duration must be more than zero")
    return duration


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time like 2030-01-31T18:00+01:00"
        ) from exc
    return value if value.tzinfo is not None else value.astimezone()  # naive: the local time zone


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coalesce-cloud admin", description="Administer a Coalesce cloud through its admin API."
    )
    parser.add_argument("--url", help=f"the cloud's base URL (env COALESCE_CLOUD_URL; default {DEFAULT_URL})")
    parser.add_argument("--admin-token", help="the admin token (prefer env COALESCE_CLOUD_ADMIN_TOKEN)")
    parser.add_argument("--ca", type=Path, metavar="FILE", help="trust this CA certificate (PEM) for the URL")
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    code = commands.add_parser("enroll-code", help="make an enrollment code (shown once)")
    code.add_argument("--org", required=True, help="the organisation the devices join (created if new)")
    code.add_argument("--uses", type=int, default=1, help="how many devices may enroll with it (default 1)")
    code.add_argument("--ttl", type=parse_duration, default=timedelta(days=7), help="valid for (default 7d)")

    devices = commands.add_parser("devices", help="list devices")
    devices.add_argument("--org", help="only this organisation's")

    suspend = commands.add_parser("suspend", help="suspend a device until a time")
    suspend.add_argument("device")
    until = suspend.add_mutually_exclusive_group(required=True)
    until.add_argument("--until", type=parse_time, help="ISO 8601 time (local time zone if none given)")
    until.add_argument("--for", dest="duration", type=parse_duration, help="how long, e.g. 1h or 2d")

    for name, text in (("revoke", "revoke a device for good"), ("restore", "lift a device's suspension")):
        commands.add_parser(name, help=text).add_argument("device")

    commands.add_parser("orgs", help="list organisations and the guests they admit")
    for name, text in (
        ("allow-guests", "let senders of another organisation resolve this organisation's meeting IDs"),
        ("deny-guests", "stop senders of another organisation from resolving this one's meeting IDs"),
    ):
        guests = commands.add_parser(name, help=text)
        guests.add_argument("org", help="the organisation whose rooms hold the meetings")
        guests.add_argument("--from", dest="guest_org", required=True, help="the guests' organisation")

    web = commands.add_parser("web-guests", help="let browsers share to an organisation's rooms, or not")
    web.add_argument("org")
    switch = web.add_mutually_exclusive_group(required=True)
    switch.add_argument("--on", dest="web_guests", action="store_true")
    switch.add_argument("--off", dest="web_guests", action="store_false")
    for name, text in (
        ("suspend-org", "suspend an organisation (its rooms admit no web guests)"),
        ("restore-org", "restore a suspended organisation"),
    ):
        commands.add_parser(name, help=text).add_argument("org")

    audit = commands.add_parser("audit", help="the audit trail, newest first")
    audit.add_argument("--device", help="only events about this device")
    audit.add_argument("--limit", type=int, default=50)
    return parser


def admin_main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has already explained
        return exc.code if isinstance(exc.code, int) else 2
    try:
        token = args.admin_token or os.environ.get("COALESCE_CLOUD_ADMIN_TOKEN")
        if not token:
            raise AdminCliError("no admin token: set COALESCE_CLOUD_ADMIN_TOKEN (or pass --admin-token)")
        url = (args.url or os.environ.get("COALESCE_CLOUD_URL") or DEFAULT_URL).rstrip("/")
        with httpx.Client(
            base_url=url + API_PREFIX,
            headers={"Authorization": f"Bearer {token}"},
            verify=_ssl_context(args.ca),
            timeout=TIMEOUT,
        ) as client:
            method, path, body, params = _request_for(args)
            answer = _call(client, method, path, body, params, url)
    except AdminCliError as exc:
        print(f"error: {exc}", file=err)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True), file=out)
    else:
        _print_human(args.command, answer, out)
    return 0


def _ssl_context(ca: Path | None) -> ssl.SSLContext:
    if ca is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise AdminCliError(f"cannot use the CA certificate: {describe_ca_file_error(exc, str(ca))}") from exc


def _request_for(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None, dict[str, Any]]:
    command = args.command
    if command == "enroll-code":
        body = {"org": args.org, "uses": args.uses, "ttl_seconds": int(args.ttl.total_seconds())}
        return "POST", "/admin/enrollment-codes", body, {}
    if command == "devices":
        return "GET", "/admin/devices", None, {"org": args.org} if args.org else {}
    if command == "orgs":
        return "GET", "/admin/orgs", None, {}
    if command in ("allow-guests", "deny-guests"):
        body = {"org": args.org, "guest_org": args.guest_org, "allowed": command == "allow-guests"}
        return "POST", "/admin/guest-access", body, {}
    if command == "web-guests":
        return "PATCH", f"/admin/orgs/{args.org}", {"web_guests": args.web_guests}, {}
    if command in ("suspend-org", "restore-org"):
        return "PATCH", f"/admin/orgs/{args.org}", {"suspended": command == "suspend-org"}, {}
    if command == "audit":
        params: dict[str, Any] = {"limit": args.limit}
        if args.device:
            params["device_id"] = args.device
        return "GET", "/admin/audit", None, params
    path = f"/admin/devices/{args.device}/{command}"
    if command == "suspend":
        if args.until is not None:
            return "POST", path, {"until": args.until.isoformat()}, {}
        return "POST", path, {"for_seconds": int(args.duration.total_seconds())}, {}
    return "POST", path, None, {}


def _call(
    client: httpx.Client,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    params: dict[str, Any],
    url: str,
) -> Any:
    try:
        response = client.request(method, path, json=body, params=params)
    except httpx.HTTPError as exc:
        target = client.base_url
        port = target.port or _DEFAULT_PORTS.get(target.scheme)
        why = describe_os_error(exc, target.host, port, peer="the cloud", how_to_trust="with --ca FILE")
        raise AdminCliError(f"cannot reach {url}: {why}") from exc
    try:
        answer = response.json()
    except ValueError as exc:
        raise AdminCliError(
            f"{url} answered HTTP {response.status_code} without JSON: is this a Coalesce cloud?"
        ) from exc
    if response.is_success:
        return answer
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        raise AdminCliError(f"{error.get('message')} ({error.get('code')}, HTTP {response.status_code})")
    raise AdminCliError(f"{url} answered HTTP {response.status_code}")


def _print_human(command: str, answer: Any, out: TextIO) -> None:
    if command == "enroll-code":
        print(f"enrollment code: {answer['code']}", file=out)
        print(f"org {answer['org']}, {answer['uses']} use(s), valid until {answer['expires_at']}", file=out)
        print("It is shown only now: hand it to the people enrolling devices.", file=out)
    elif command == "devices":
        rows: list[tuple[str, ...]] = [
            (d["device_id"], d["kind"], d["status"] + _until(d), d["org"], d["name"], d["last_seen"] or "-")
            for d in answer["devices"]
        ]
        _table(("DEVICE", "KIND", "STATUS", "ORG", "NAME", "LAST SEEN"), rows, out)
    elif command == "orgs":
        rows = [(o["name"], ", ".join(o["guest_orgs"]) or "-", o["created_at"]) for o in answer["orgs"]]
        _table(("ORG", "GUESTS FROM", "CREATED"), rows, out)
    elif command in ("allow-guests", "deny-guests"):
        guests = ", ".join(answer["guest_orgs"])
        print(
            f"meeting IDs of org {answer['name']} resolve for its own senders"
            + (f" and those of: {guests}" if guests else " only"),
            file=out,
        )
    elif command in ("web-guests", "suspend-org", "restore-org"):
        state = "suspended" if answer["suspended"] else "active"
        web = "take" if answer["web_guests"] and not answer["suspended"] else "do not take"
        print(f"org {answer['name']} is {state}; its rooms {web} shares from a browser", file=out)
    elif command == "audit":
        rows = [
            (
                e["at"],
                e["actor"],
                e["action"],
                e["device_id"] or "-",
                json.dumps(e["details"], sort_keys=True),
            )
            for e in answer["events"]
        ]
        _table(("AT", "ACTOR", "ACTION", "DEVICE", "DETAILS"), rows, out)
    else:
        device = answer["device"]
        print(
            f"device {device['device_id']} ({device['name']}): {device['status']}{_until(device)}", file=out
        )
        if command in ("suspend", "revoke"):
            print(
                f"XMPP sessions kicked: {answer['sessions_kicked']}; "
                f"boxes told to end its shares: {answer['boxes_notified']}",
                file=out,
            )


def _until(device: dict[str, Any]) -> str:
    return f" until {device['suspended_until']}" if device.get("suspended_until") else ""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    if not rows:
        print("(none)", file=out)
        return
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )
