"""deploy/coturn/turnserver.conf and the managed coturn's config agree on the TLS policy of
coalesce_common.tls (coturn reads the same OpenSSL cipher list)."""

from __future__ import annotations

from pathlib import Path

from coalesce_cloud.servers.coturn import CoturnConfig, render_turnserver_conf
from coalesce_common.tls import CIPHER_LIST

DEPLOYED = Path(__file__).resolve().parents[3] / "deploy" / "coturn" / "turnserver.conf"
TLS_LINES = {f"cipher-list={CIPHER_LIST}", "no-tlsv1", "no-tlsv1_1", "no-dtls"}


def _active_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def test_production_and_the_managed_coturn_share_the_tls_policy(tmp_path: Path) -> None:
    managed = render_turnserver_conf(
        CoturnConfig(
            state_dir=tmp_path, certfile=tmp_path / "c.pem", keyfile=tmp_path / "k.pem",
            listening_port=3478, tls_port=5349, relay_min_port=49160, relay_max_port=49200,
        )
    )  # fmt: skip
    for text in (managed, DEPLOYED.read_text(encoding="utf-8")):
        lines = _active_lines(text)
        assert lines >= TLS_LINES
        assert [line for line in lines if line.startswith("cipher-list")] == [f"cipher-list={CIPHER_LIST}"]
