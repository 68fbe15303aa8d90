"""What ejabberd.yml and ejabberdctl.cfg say, for the node this package runs and for production alike.

:class:`XmppService` holds what differs between the two (domain, certificates, addresses, ports, who may
call the admin API); :func:`ejabberd_options` turns it into the options of ``ejabberd.yml``, each with the
reason it is set so. Everything that makes the service safe is fixed here, the same for both: SCRAM-SHA-256
only (``auth_password_format: scram``, ``auth_scram_hash: sha256``; PLAIN, DIGEST-MD5 and X-OAUTH2 are not
offered), STARTTLS required on ``c2s_port`` and direct TLS on ``c2s_tls_port`` (the product's
XMPP-over-TLS-on-443), the TLS policy of :mod:`coalesce_common.tls` (TLS 1.3, and 1.2 with ECDHE AEAD
suites only) on every TLS listener and for s2s, no federation, masked passwords in logs, and an admin REST
API (mod_http_api) that runs only :data:`API_COMMANDS`, only for the cloud's own account
(:data:`API_USER`, HTTP Basic auth) and only from ``api_allowed_networks``. That account may not log in
over XMPP, and nothing is granted to an address alone: any local user could otherwise create accounts.
The managed node has one listener more, a unix socket in its private state folder through which it sets
up that account (``owner_socket``); production creates it once with ``ejabberdctl``.

The managed node's settings come from :class:`EjabberdConfig` (:func:`managed_service`); production's are
in :mod:`.deploy`, which writes ``deploy/ejabberd/``. ``ejabberdctl.cfg`` is a list of shell variables
(:class:`ShellVariable`); both kinds of node keep crash dumps off and Erlang distribution on one interface.
"""

from __future__ import annotations

import enum
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from coalesce_common.tls import CIPHER_LIST

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None

API_COMMANDS: tuple[str, ...] = (
    "register",
    "unregister",
    "check_account",
    "change_password",
    "kick_user",
    "ban_account",
    "send_message",
    "connected_users",
    "registered_users",
    "status",
    "user_sessions_info",
    "list_cluster",
)
"""The ejabberd commands the admin API may run (all exist in ejabberd 23.01). The cloud calls register,
change_password, kick_user, send_message and unregister (web guests); ban_account is in its XmppAdmin
interface; the other six only read (the tests and monitoring use status and list_cluster)."""

API_USER = "coalesce-api"
"""The localpart of the one account mod_http_api obeys (the cloud's XmppSettings.api_user)."""
API_ACCOUNT_ACL = "coalesce_api_account"
API_HOSTS_ACL = "coalesce_api_hosts"
API_ACCESS = "coalesce_api"
"""The access rule that grants the admin API: the account AND one of the allowed networks."""
OWNER_SOCKET_TAG = "owner-socket"
OWNER_SOCKET_COMMANDS = ("register", "change_password")
"""What the managed node's owner may do through its private unix socket: set up the API's account."""
MAX_UNIX_SOCKET_PATH = 107
"""Bytes in a unix socket path (sun_path is 108 with the terminating NUL on Linux)."""

TLS_PROTOCOL_OPTIONS = ("no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1", "cipher_server_preference")
TLS_CIPHERS = CIPHER_LIST
"""TLS 1.2 suites (OpenSSL syntax, fast_tls passes it on); TLS 1.3 keeps OpenSSL's suites, all AEAD."""
DISABLED_SASL_MECHANISMS = ("PLAIN", "DIGEST-MD5", "X-OAUTH2")
MAX_STANZA_SIZE = 262_144
"""Bytes; room for a 64 KiB message body after XML escaping."""
ERL_SAFETY_OPTIONS = ("-env ERL_CRASH_DUMP_BYTES 0",)
"""Erlang options every node gets: no crash dumps (they can hold secrets from memory)."""

MODULES: dict[str, JsonValue] = {
    "mod_admin_extra": {},
    "mod_caps": {},
    "mod_disco": {},
    "mod_offline": {},
    "mod_ping": {},
    "mod_roster": {},
    "mod_stream_mgmt": {},
}

WEBSOCKET_PATH = "/xmpp-websocket"
"""Where the WebSocket listener serves XMPP (the path RFC 7395's examples and most servers use)."""

INETRC = '{lookup, ["file", "native"]}.\n{host, {127,0,0,1}, ["localhost"]}.\n'


# ------------------------------------------------------------------------------------------- ejabberd.yml


@dataclass(frozen=True)
class XmppService:
    """What one ejabberd.yml says that differs between the managed node and production."""

    domain: str
    certfiles: tuple[str, ...]
    """PEMs holding certificate (chain) and key; they must cover ``domain``."""
    ca_file: str | None
    """The CA bundle that lets ejabberd check its own chain at start."""
    listen_ip: str
    """Where the client listeners bind."""
    c2s_port: int
    """STARTTLS (required) client listener."""
    c2s_tls_port: int
    """Direct-TLS client listener (443 in production)."""
    http_api_ip: str
    http_api_port: int
    api_allowed_networks: tuple[str, ...]
    """Where calls to the admin API may come from, in addition to the account's credentials."""
    api_account: str
    """The JID (``API_USER@domain``) whose HTTP Basic credentials the admin API requires."""
    api_permission: str = "cloud admin"
    owner_socket: str | None = None
    """A unix socket where mod_http_api lets whoever can open it (the node's owner: it lives in the 0700
    state folder) create the API's account without a password on any command line; managed node only."""
    """The name of the ``api_permissions`` rule for the cloud's calls."""
    api_commands: tuple[str, ...] = API_COMMANDS
    max_stanza_size: int = MAX_STANZA_SIZE
    disabled_sasl_mechanisms: tuple[str, ...] = DISABLED_SASL_MECHANISMS
    websocket_port: int | None = None
    """XMPP over WebSocket (RFC 7395) over TLS, at :data:`WEBSOCKET_PATH`, for web guests; None: none."""
    websocket_origins: tuple[str, ...] = ()
    """The only page origins (``https://cloud.example.com``) whose WebSocket connections are taken: the
    cloud's sharing page. A page elsewhere cannot log a stolen guest identity in from a visitor's browser."""
    loglevel: str = "info"
    backlog: int | None = None
    """Pending connections per client listener; None: ejabberd's default (5)."""
    notes: Mapping[str, str] = field(default_factory=dict)
    """More to say above an option, by key (production's file explains its paths and ports)."""


@dataclass(frozen=True)
class Option:
    """One top-level option of ejabberd.yml, with the comment that says why it is set so."""

    key: str
    value: JsonValue
    why: str = ""


def ejabberd_options(service: XmppService) -> list[Option]:
    client: dict[str, JsonValue] = {"ip": service.listen_ip, "module": "ejabberd_c2s", "access": "c2s"}
    if service.backlog is not None:
        client["backlog"] = service.backlog
    tls: dict[str, JsonValue] = {
        "max_stanza_size": service.max_stanza_size,
        "ciphers": TLS_CIPHERS,
        "protocol_options": list(TLS_PROTOCOL_OPTIONS),
    }
    options = [
        Option("loglevel", service.loglevel),
        Option("log_rotate_count", 0, "0 turns ejabberd's own log rotation off (logrotate may do it)."),
        Option(
            "hide_sensitive_log_data",
            True,
            "mod_http_api logs every call with its arguments; this masks password/newpass in those lines.\n"
            "The cloud sends account passwords through `register` and `change_password`: keep this true.",
        ),
        Option("hosts", [service.domain]),
        Option(
            "certfiles",
            list(service.certfiles),
            "Certificate chain and private key; they must cover the XMPP domain (devices check the\n"
            "certificate against the domain, not against the host they connect to).",
        ),
    ]
    if service.ca_file is not None:
        options.append(Option("ca_file", service.ca_file, "Lets ejabberd check its own chain at start."))
    options += [
        Option(
            "auth_method",
            "internal",
            "Accounts: SCRAM-SHA-256 only. auth_scram_hash must be set before the first account exists\n"
            "(stored SCRAM hashes cannot be converted); only SCRAM verifiers are stored, never passwords.",
        ),
        Option("auth_password_format", "scram"),
        Option("auth_scram_hash", "sha256"),
        Option(
            "disable_sasl_mechanisms",
            list(service.disabled_sasl_mechanisms),
            "PLAIN would send the password itself (inside TLS); DIGEST-MD5 and X-OAUTH2 are unused.",
        ),
        Option(
            "s2s_access",
            "none",
            "No federation: devices only talk to their own domain (and there is no s2s listener).",
        ),
        Option(
            "s2s_ciphers",
            TLS_CIPHERS,
            "TLS policy (coalesce_common/tls.py), for the day federation is turned on: TLS 1.3, and TLS 1.2\n"
            "with ECDHE and AES-GCM or ChaCha20-Poly1305 only. The client listeners below say the same.",
        ),
        Option("s2s_protocol_options", list(TLS_PROTOCOL_OPTIONS)),
        Option(
            "listen",
            [
                {"port": service.c2s_port, **client, "starttls": True, "starttls_required": True, **tls},
                {"port": service.c2s_tls_port, **client, "tls": True, **tls},
                {
                    "port": service.http_api_port,
                    "ip": service.http_api_ip,
                    "module": "ejabberd_http",
                    "request_handlers": {"/api": "mod_http_api"},
                },
                *_websocket_listener(service, tls),
                *_owner_socket_listener(service),
            ],
            "1. Client-to-server with STARTTLS (required). 2. Client-to-server with direct TLS (XEP-0368),\n"
            "the port HTTP proxies let through. Both: TLS 1.3, or TLS 1.2 with the ciphers listed\n"
            "(ECDHE with AEAD only; no DHE, so no dhfile). 3. The admin REST API (mod_http_api) for the\n"
            "cloud only: plain HTTP; every call needs the cloud account's password (HTTP Basic) AND an\n"
            "allowed address (api_permissions below), behind the firewall. Never bind it to a public\n"
            "address. Do not give c2s a shaper as slow as Debian's `normal` (3000 B/s): an SDP offer or a\n"
            "64 KiB signaling message would crawl."
            + (
                "\n4. XMPP over WebSocket (RFC 7395) over TLS, for the browser sharing page's guests."
                if service.websocket_port is not None
                else ""
            ),
        ),
        Option(
            "acl",
            {
                "local": {"user_regexp": ""},
                API_ACCOUNT_ACL: {"user": service.api_account},
                API_HOSTS_ACL: {"ip": list(service.api_allowed_networks)},
            },
            f"{API_ACCOUNT_ACL}: the cloud's account for the admin API; {API_HOSTS_ACL}: where it calls\n"
            "from.",
        ),
        Option(
            "access_rules",
            {
                "local": {"allow": "local"},
                "c2s": [{"deny": API_ACCOUNT_ACL}, {"allow": "all"}],
                API_ACCESS: {"allow": [API_ACCOUNT_ACL, API_HOSTS_ACL]},
            },
            "c2s: the admin account is for the API only and may not log in over XMPP.\n"
            f"{API_ACCESS}: both ACLs must match (a list under one `allow` means all of them).",
        ),
        Option(
            "api_permissions",
            {
                "console commands": {"from": ["ejabberd_ctl"], "who": "all", "what": "*"},
                service.api_permission: {
                    "from": ["mod_http_api"],
                    "who": {"access": API_ACCESS},
                    "what": list(service.api_commands),
                },
                **_owner_socket_permission(service),
            },
            "`ejabberdctl` on the node itself may run anything (it needs the Erlang cookie); over HTTP only\n"
            f"the cloud's account, from its hosts ({API_ACCESS}), and only the commands in API_COMMANDS\n"
            "(coalesce_cloud/servers/ejabberd/config.py). A wrong password answers 401, anyone else 403.",
        ),
        Option("modules", MODULES, "No mod_register: accounts are made only by the cloud."),
    ]
    if service.websocket_port is not None:
        options.append(
            Option(
                "websocket_origin",
                list(service.websocket_origins),
                "WebSocket connections only from the cloud's sharing page (the Origin a browser sends):\n"
                "another site cannot use a visitor's browser to log in with an identity it took.",
            )
        )
    return [_with_note(option, service.notes.get(option.key)) for option in options]


def _websocket_listener(service: XmppService, tls: dict[str, JsonValue]) -> list[JsonValue]:
    if service.websocket_port is None:
        return []
    if not service.websocket_origins:  # ejabberd's default, "ignore", would take any page's connections
        raise ValueError("an XMPP WebSocket listener needs the sharing page's origin (websocket_origins)")
    return [
        {
            "port": service.websocket_port,
            "ip": service.listen_ip,
            "module": "ejabberd_http",
            "tls": True,
            "ciphers": tls["ciphers"],
            "protocol_options": tls["protocol_options"],
            "request_handlers": {WEBSOCKET_PATH: "ejabberd_http_ws"},
        }
    ]


def _owner_socket_listener(service: XmppService) -> list[JsonValue]:
    if service.owner_socket is None:
        return []
    return [
        {
            "port": f"unix:{service.owner_socket}",
            "module": "ejabberd_http",
            "tag": OWNER_SOCKET_TAG,
            "request_handlers": {"/api": "mod_http_api"},
        }
    ]


def _owner_socket_permission(service: XmppService) -> dict[str, JsonValue]:
    if service.owner_socket is None:
        return {}
    # The tag is the listener's, not the request's: only connections to that socket carry it.
    rule: dict[str, JsonValue] = {
        "from": ["mod_http_api", {"tag": OWNER_SOCKET_TAG}],
        "who": "all",
        "what": list(OWNER_SOCKET_COMMANDS),
    }
    return {"node owner": rule}


def render_yml(options: Sequence[Option], header: str) -> str:
    """ejabberd.yml: ``header`` and each option's reason as comments, values in YAML block style."""
    lines = _comment(header, "###")
    previous_block = True
    for option in options:
        block = not _inline(option.value)  # one-line options without a comment stay with the one above
        if option.why or block or previous_block:
            lines.append("")
        previous_block = block
        lines += _comment(option.why, "#")
        lines += _yaml({option.key: option.value}, 0)
    return "\n".join(lines) + "\n"


def _with_note(option: Option, note: str | None) -> Option:
    if not note:
        return option
    return Option(option.key, option.value, f"{option.why}\n{note}" if option.why else note)


def _comment(text: str, mark: str) -> list[str]:
    return [f"{mark} {line}".rstrip() for line in text.splitlines()] if text else []


_PLAIN_KEY = re.compile(r"^[A-Za-z_/][A-Za-z0-9_/.-]*$")


def _yaml(value: JsonValue, indent: int) -> list[str]:
    """Block-style YAML for a JSON-like value; strings and odd keys as JSON strings, which YAML reads."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict) and value:
        for key, item in value.items():
            name = key if _PLAIN_KEY.match(key) else json.dumps(key)
            if _inline(item):
                lines.append(f"{pad}{name}: {_scalar(item)}")
            else:
                lines.append(f"{pad}{name}:")
                lines += _yaml(item, indent + 1)
    elif isinstance(value, list) and value:
        for item in value:
            if _inline(item):
                lines.append(f"{pad}- {_scalar(item)}")
            else:
                lines.append(f"{pad}-")
                lines += _yaml(item, indent + 1)
    else:
        lines.append(pad + _scalar(value))
    return lines


def _inline(value: JsonValue) -> bool:
    return not isinstance(value, dict | list) or not value


def _scalar(value: JsonValue) -> str:
    return json.dumps(value)  # true/false/null, numbers and "strings" mean the same in YAML


# ---------------------------------------------------------------------------------------- ejabberdctl.cfg


@dataclass(frozen=True)
class ShellVariable:
    """One assignment in ejabberdctl.cfg, a shell fragment the ejabberdctl script sources."""

    name: str
    value: str
    why: str = ""
    export: bool = False


def render_ctl(variables: Sequence[ShellVariable], header: str) -> str:
    lines = _comment(header, "#")
    for variable in variables:
        if variable.why:
            lines.append("")
            lines += _comment(variable.why, "#")
        value = f'"{variable.value}"' if " " in variable.value else variable.value
        lines.append(f"{'export ' if variable.export else ''}{variable.name}={value}")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------- the managed node


class DistMode(enum.Enum):
    """How the Erlang node is reached by ejabberdctl and by other nodes."""

    PORT = "port"
    """One fixed distribution port (``ERL_DIST_PORT``), no epmd: a single node."""
    EPMD = "epmd"
    """Registered with an epmd on 127.0.0.1:``epmd_port`` that someone else runs: cluster nodes."""


@dataclass(frozen=True)
class EjabberdConfig:
    """One node run by :class:`~coalesce_cloud.servers.ejabberd.EjabberdNode`, all its state under
    ``state_dir``."""

    state_dir: Path
    certfile: Path
    """PEM holding certificate (chain) and key, e.g. ``CertFiles.combined``; must cover ``domain``."""
    c2s_port: int
    """STARTTLS (required) client listener."""
    c2s_tls_port: int
    """Direct-TLS client listener (443 in production)."""
    http_api_port: int
    dist_port: int | None = None
    """Erlang distribution port; required with :attr:`DistMode.PORT`, unused with EPMD."""
    ca_file: Path | None = None
    """The CA that issued ``certfile``; lets ejabberd validate its own chain (no self-signed warning)."""
    host: str = "127.0.0.1"
    """Address the client listeners bind to."""
    http_api_host: str = "127.0.0.1"
    domain: str = "coalesce.test"
    node_name: str = "ejabberd@localhost"
    cookie: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    dist_mode: DistMode = DistMode.PORT
    epmd_port: int | None = None
    api_allowed_networks: tuple[str, ...] = ("127.0.0.0/8",)
    api_user: str = API_USER
    api_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    """The admin API account's password; the node creates the account with it (see EjabberdNode)."""
    api_commands: tuple[str, ...] = API_COMMANDS
    max_stanza_size: int = MAX_STANZA_SIZE
    disabled_sasl_mechanisms: tuple[str, ...] = DISABLED_SASL_MECHANISMS
    websocket_port: int | None = None
    """XMPP over WebSocket with TLS for web guests (see XmppService); None: no such listener."""
    websocket_origins: tuple[str, ...] = ()
    loglevel: str = "info"

    def __post_init__(self) -> None:
        if len(os.fsencode(self.owner_socket)) > MAX_UNIX_SOCKET_PATH:
            raise ValueError(
                f"the state folder {self.state_dir} is too long a path for ejabberd's private socket "
                f"(at most {MAX_UNIX_SOCKET_PATH - len('/owner.sock')} bytes): choose a shorter one"
            )
        if self.dist_mode is DistMode.PORT and self.dist_port is None:
            raise ValueError("DistMode.PORT needs dist_port")
        if self.dist_mode is DistMode.EPMD and self.epmd_port is None:
            raise ValueError("DistMode.EPMD needs epmd_port")

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def home_dir(self) -> Path:
        return self.state_dir / "home"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "ejabberd.yml"

    @property
    def ctl_config_file(self) -> Path:
        return self.state_dir / "ejabberdctl.cfg"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "ejabberd.pid"

    @property
    def erl_launcher(self) -> Path:
        """The script ejabberdctl runs instead of ``erl`` (it ties beam.smp's life to the script's)."""
        return self.state_dir / "erl"

    @property
    def owner_socket(self) -> Path:
        """The unix socket through which the node sets up the API's account (see XmppService)."""
        return self.state_dir / "owner.sock"

    @property
    def api_jid(self) -> str:
        return f"{self.api_user}@{self.domain}"

    @property
    def api_url(self) -> str:
        host = f"[{self.http_api_host}]" if ":" in self.http_api_host else self.http_api_host
        return f"http://{host}:{self.http_api_port}/api"


MANAGED_HEADER = "Written by coalesce_cloud.servers.ejabberd; rewritten on every start."


def managed_service(config: EjabberdConfig) -> XmppService:
    return XmppService(
        domain=config.domain,
        certfiles=(str(config.certfile),),
        ca_file=str(config.ca_file) if config.ca_file is not None else None,
        listen_ip=config.host,
        c2s_port=config.c2s_port,
        c2s_tls_port=config.c2s_tls_port,
        http_api_ip=config.http_api_host,
        http_api_port=config.http_api_port,
        api_allowed_networks=config.api_allowed_networks,
        api_account=config.api_jid,
        owner_socket=str(config.owner_socket),
        api_commands=config.api_commands,
        max_stanza_size=config.max_stanza_size,
        disabled_sasl_mechanisms=config.disabled_sasl_mechanisms,
        websocket_port=config.websocket_port,
        websocket_origins=config.websocket_origins,
        loglevel=config.loglevel,
    )


def render_ejabberd_yml(config: EjabberdConfig) -> str:
    """The managed node's ejabberd.yml."""
    return render_yml(ejabberd_options(managed_service(config)), MANAGED_HEADER)


def managed_ctl_variables(config: EjabberdConfig) -> list[ShellVariable]:
    # Same effect as INET_DIST_INTERFACE, without the extra erl run the script spends to parse it.
    erl_options = [*ERL_SAFETY_OPTIONS, "-kernel inet_dist_use_interface {127,0,0,1}"]
    variables = [
        ShellVariable("ERLANG_NODE", config.node_name),
        ShellVariable(
            "EXEC_CMD",
            "as_current_user",
            "Debian's script would `su ejabberd` when run as root, which needs an ejabberd-owned spool.",
        ),
        ShellVariable(
            "ERL",
            str(config.erl_launcher),
            "ejabberdctl runs erl as its child, not by exec; this launcher makes beam.smp die with it.",
        ),
        ShellVariable("EJABBERD_PID_PATH", str(config.pid_file)),
        ShellVariable("EJABBERD_BYPASS_WARNINGS", "true"),
    ]
    if config.dist_mode is DistMode.PORT:
        variables.append(ShellVariable("ERL_DIST_PORT", str(config.dist_port)))
    else:
        erl_options.append("-start_epmd false")
        variables.append(ShellVariable("ERL_EPMD_PORT", str(config.epmd_port), export=True))
    variables.append(ShellVariable("ERL_OPTIONS", " ".join(erl_options)))
    return variables


def render_ejabberdctl_cfg(config: EjabberdConfig) -> str:
    """The managed node's ejabberdctl.cfg."""
    return render_ctl(managed_ctl_variables(config), MANAGED_HEADER)
