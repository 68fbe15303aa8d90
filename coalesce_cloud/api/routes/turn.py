"""``POST /turn-credentials``: short-lived coturn credentials and ICE servers for every region."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter

from coalesce_cloud.api.deps import DEVICE_ANSWERS, DeviceDep, NowDep, SettingsDep
from coalesce_cloud.api.errors import Answer, ApiError, documented
from coalesce_cloud.api.schemas import IceServer, TurnCredentials
from coalesce_cloud.core.config import Settings
from coalesce_cloud.core.turn import region_urls
from coalesce_cloud.servers.coturn import turn_rest_credentials

router = APIRouter(tags=["turn"])

TURN_UNAVAILABLE = Answer(503, "turn_unavailable", "this cloud has no TURN server configured")


@router.post("/turn-credentials", responses=documented(*DEVICE_ANSWERS, TURN_UNAVAILABLE))
def issue_turn_credentials(device: DeviceDep, settings: SettingsDep, now: NowDep) -> TurnCredentials:
    """Credentials for every region, valid ``ttl`` seconds. The client orders regions by its own STUN
    round trips. Suspended and revoked devices get none (403 from authentication)."""
    return turn_credentials(settings, device.id, now)


def turn_credentials(settings: Settings, user: str, now: datetime) -> TurnCredentials:
    """coturn REST credentials of ``user`` (a device, or a web guest) for every region; 503 without any."""
    turn = settings.turn
    ttl = turn.credential_ttl
    servers: list[IceServer] = []
    for region in turn.regions:
        secret = region.static_auth_secret or turn.static_auth_secret
        if secret is None:
            continue
        username, credential = turn_rest_credentials(
            secret.get_secret_value(), user, ttl, now=now.timestamp()
        )
        servers.append(
            IceServer(region=region.name, urls=region_urls(region), username=username, credential=credential)
        )
    if not servers:
        raise ApiError(503, "turn_unavailable", "No TURN server is configured on this cloud.")
    return TurnCredentials(ttl=ttl, expires_at=now + timedelta(seconds=ttl), servers=servers)
