"""deploy/ejabberd/ is what the renderer writes, and production agrees with the managed node (which the
other tests run) on every setting that keeps the service safe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coalesce_cloud.servers.ejabberd import EjabberdConfig, EjabberdNode
from coalesce_cloud.servers.ejabberd.config import (
    API_ACCESS,
    API_ACCOUNT_ACL,
    API_HOSTS_ACL,
    DISABLED_SASL_MECHANISMS,
    ERL_SAFETY_OPTIONS,
    OWNER_SOCKET_TAG,
    JsonValue,
    ShellVariable,
    ejabberd_options,
    managed_ctl_variables,
    managed_service,
    render_ejabberd_yml,
)
from coalesce_cloud.servers.ejabberd.deploy import (
    DEPLOY_DIR,
    PRODUCTION,
    PRODUCTION_CTL,
    main,
    production_files,
)
from coalesce_common.tls import CIPHER_LIST

SECURITY_OPTIONS = (
    "hide_sensitive_log_data",
    "auth_method",
    "auth_password_format",
    "auth_scram_hash",
    "disable_sasl_mechanisms",
    "s2s_access",
    "s2s_ciphers",
    "s2s_protocol_options",
    "access_rules",
    "modules",
)
"""Top-level options that must be equal; listeners, acl and api_permissions are compared field by field."""
LISTENER_SECURITY = (
    "module",
    "access",
    "starttls",
    "starttls_required",
    "tls",
    "ciphers",
    "protocol_options",
)


@pytest.fixture
def managed(tmp_path: Path) -> EjabberdConfig:
    return EjabberdConfig(
        state_dir=tmp_path, certfile=tmp_path / "xmpp.pem", c2s_port=5222, c2s_tls_port=5223,
        http_api_port=5280, dist_port=4370, ca_file=tmp_path / "ca.pem",
        websocket_port=5443, websocket_origins=("https://127.0.0.1:9443",),
    )  # fmt: skip


def options(config: Any) -> dict[str, JsonValue]:
    return {option.key: option.value for option in ejabberd_options(config)}


def test_the_committed_deploy_files_are_what_the_renderer_writes() -> None:
    for name, text in production_files().items():
        committed = (DEPLOY_DIR / name).read_text(encoding="utf-8")
        assert committed == text, (
            f"deploy/ejabberd/{name} differs from its renderer: run "
            "`python -m coalesce_cloud.servers.ejabberd.deploy` (and edit the code, not the file)"
        )


def test_the_writer_writes_every_deploy_file(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == production_files()


def test_production_and_the_managed_node_agree_on_security(managed: EjabberdConfig) -> None:
    mine, production = options(managed_service(managed)), options(PRODUCTION)
    assert set(mine) == set(production)
    for key in SECURITY_OPTIONS:
        assert production[key] == mine[key], key
    assert production["disable_sasl_mechanisms"] == list(DISABLED_SASL_MECHANISMS)
    assert "PLAIN" in DISABLED_SASL_MECHANISMS
    assert (production["auth_password_format"], production["auth_scram_hash"]) == ("scram", "sha256")

    my_listeners, production_listeners = mine["listen"], production["listen"]
    assert isinstance(my_listeners, list) and isinstance(production_listeners, list)
    # The managed node has one listener more: its owner's private socket (production uses ejabberdctl).
    assert len(my_listeners) == len(production_listeners) + 1 == 5
    owner_socket = my_listeners.pop()
    assert owner_socket == {
        "port": f"unix:{managed.owner_socket}",
        "module": "ejabberd_http",
        "tag": OWNER_SOCKET_TAG,
        "request_handlers": {"/api": "mod_http_api"},
    }
    for my_listener, production_listener in zip(my_listeners, production_listeners, strict=True):
        assert isinstance(my_listener, dict) and isinstance(production_listener, dict)
        for key in LISTENER_SECURITY:
            assert production_listener.get(key) == my_listener.get(key), key
    starttls, direct_tls, admin, websocket = production_listeners
    assert isinstance(starttls, dict) and isinstance(direct_tls, dict) and isinstance(admin, dict)
    assert isinstance(websocket, dict) and websocket["tls"] is True
    assert websocket["request_handlers"] == {"/xmpp-websocket": "ejabberd_http_ws"}
    # Only the cloud's own sharing page may open XMPP WebSockets.
    assert production["websocket_origin"] == ["https://{{API_HOST}}"]
    assert mine["websocket_origin"] == ["https://127.0.0.1:9443"]
    assert starttls["starttls_required"] is True and direct_tls["tls"] is True
    assert starttls["max_stanza_size"] == direct_tls["max_stanza_size"] == 262_144
    assert admin["ip"] == "{{NODE_PRIVATE_IP}}" and admin["request_handlers"] == {"/api": "mod_http_api"}

    my_rules, production_rules = mine["api_permissions"], production["api_permissions"]
    assert isinstance(my_rules, dict) and isinstance(production_rules, dict)
    assert my_rules["console commands"] == production_rules["console commands"]
    assert my_rules.pop("node owner") == {
        "from": ["mod_http_api", {"tag": OWNER_SOCKET_TAG}],
        "who": "all",
        "what": ["register", "change_password"],
    }
    (my_api,) = (rule for name, rule in my_rules.items() if name != "console commands")
    (production_api,) = (rule for name, rule in production_rules.items() if name != "console commands")
    assert isinstance(my_api, dict) and isinstance(production_api, dict)
    assert production_api["what"] == my_api["what"] and production_api["from"] == my_api["from"]
    assert production_api["who"] == my_api["who"] == {"access": API_ACCESS}

    my_acl, production_acl = mine["acl"], production["acl"]
    assert isinstance(my_acl, dict) and isinstance(production_acl, dict)
    assert set(my_acl) == set(production_acl) and my_acl["local"] == production_acl["local"]
    assert production_acl[API_ACCOUNT_ACL] == {"user": "coalesce-api@{{XMPP_DOMAIN}}"}
    assert my_acl[API_ACCOUNT_ACL] == {"user": managed.api_jid}
    assert production_acl[API_HOSTS_ACL] == {"ip": ["{{API_NETWORK}}"]}


def test_the_tls_policy_is_the_one_of_coalesce_common(managed: EjabberdConfig) -> None:
    for config in (managed_service(managed), PRODUCTION):
        settings = options(config)
        assert settings["s2s_ciphers"] == CIPHER_LIST
        listen = settings["listen"]
        assert isinstance(listen, list)
        tls_listeners = [
            item for item in listen if isinstance(item, dict) and item["module"] == "ejabberd_c2s"
        ]
        assert len(tls_listeners) == 2
        for listener in tls_listeners:
            assert listener["ciphers"] == CIPHER_LIST
            assert {"no_sslv3", "no_tlsv1", "no_tlsv1_1"} <= set(listener["protocol_options"])  # type: ignore[arg-type]


def _ctl(variables: tuple[ShellVariable, ...] | list[ShellVariable]) -> dict[str, str]:
    return {variable.name: variable.value for variable in variables}


def test_both_kinds_of_node_keep_crash_dumps_off_and_distribution_on_one_interface(
    managed: EjabberdConfig,
) -> None:
    mine, production = _ctl(managed_ctl_variables(managed)), _ctl(PRODUCTION_CTL)
    for option in ERL_SAFETY_OPTIONS:
        assert option in mine["ERL_OPTIONS"] and option in production["ERL_OPTIONS"]
    assert "-setcookie" not in mine["ERL_OPTIONS"] + production["ERL_OPTIONS"]
    assert "inet_dist_use_interface {127,0,0,1}" in mine["ERL_OPTIONS"]
    assert production["INET_DIST_INTERFACE"] == production["ERL_EPMD_ADDRESS"] == "{{NODE_PRIVATE_IP}}"


def test_the_running_node_was_configured_by_the_same_renderer(ejabberd: EjabberdNode) -> None:
    assert ejabberd.config.config_file.read_text() == render_ejabberd_yml(ejabberd.config)


def test_a_websocket_listener_without_the_pages_origin_is_refused(tmp_path: Path) -> None:
    config = EjabberdConfig(
        state_dir=tmp_path, certfile=tmp_path / "xmpp.pem", c2s_port=5222, c2s_tls_port=5223,
        http_api_port=5280, dist_port=4370, websocket_port=5443,
    )  # fmt: skip
    with pytest.raises(ValueError, match="origin"):  # ejabberd's default would take any site's pages
        options(managed_service(config))
