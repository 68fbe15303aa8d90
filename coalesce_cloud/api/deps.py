"""Request dependencies and their ``Annotated`` aliases: what a route may ask for.

- ``SettingsDep``, ``SessionDep`` (one sync SQLAlchemy session per request; routes commit), ``NowDep``
  (the app's clock, injectable for tests), ``XmppAdminDep``, ``ContextDep``;
- ``DeviceDep``: the device of a valid ``Authorization: Bearer <device_id>.<secret>``; 401
  ``unauthenticated``, or what :func:`coalesce_cloud.api.revocation.admit` refuses (a suspended or
  revoked device). ``BoxDep``: the same, and it must be a box (403 ``not_a_box``);
- ``AdminDep``: ``Authorization: Bearer <admin_token>``, compared in constant time.

``DEVICE_ANSWERS``, ``BOX_ANSWERS`` and ``ADMIN_ANSWERS`` are the refusals each of them can give, for the
``responses=`` of the routes that use them.

Dependencies that touch the database are plain ``def``: FastAPI runs them in its thread pool, so they
never block the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from coalesce_cloud import crud
from coalesce_cloud.api import revocation
from coalesce_cloud.api.errors import UNAUTHENTICATED, Answer, ApiError, unauthenticated
from coalesce_cloud.core.config import Settings
from coalesce_cloud.core.security import admin_token_matches
from coalesce_cloud.guest_expiry import GuestExpiry
from coalesce_cloud.models import Device, DeviceKind
from coalesce_cloud.xmpp_admin import XmppAdmin

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class AppContext:
    """Everything the lifespan builds; routes reach it through the dependencies below."""

    settings: Settings
    clock: Clock
    session_factory: sessionmaker[Session]
    xmpp_admin: XmppAdmin
    signing_key: Ed25519PrivateKey
    update_public_key: str
    guest_expiry: GuestExpiry


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_settings(context: ContextDep) -> Settings:
    return context.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(context: ContextDep) -> Iterator[Session]:
    with context.session_factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_now(context: ContextDep) -> datetime:
    return context.clock()


NowDep = Annotated[datetime, Depends(get_now)]


def get_xmpp_admin(context: ContextDep) -> XmppAdmin:
    return context.xmpp_admin


XmppAdminDep = Annotated[XmppAdmin, Depends(get_xmpp_admin)]

_device_bearer = HTTPBearer(
    auto_error=False, scheme_name="DeviceToken", description="`<device_id>.<secret>` from /enroll"
)
_admin_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken", description="the admin token")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_device_bearer)]
AdminBearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)]


def current_device(session: SessionDep, now: NowDep, credentials: BearerDep) -> Device:
    if credentials is None:
        raise unauthenticated("Send 'Authorization: Bearer <device token>' (the token from enrollment).")
    device = crud.authenticate_device(session, token=credentials.credentials)
    if device is None:
        raise unauthenticated("The device token is not valid; enroll the device again.")
    revocation.admit(session, device=device, now=now)
    crud.touch_device(session, device=device, now=now)
    session.commit()
    return device


DeviceDep = Annotated[Device, Depends(current_device)]
DEVICE_ANSWERS = (UNAUTHENTICATED, *revocation.STANDING_ANSWERS)


def current_box(device: DeviceDep) -> Device:
    if device.kind is not DeviceKind.BOX:
        raise ApiError(403, "not_a_box", "Only a box (meeting-room receiver) may do this.")
    return device


BoxDep = Annotated[Device, Depends(current_box)]
BOX_ANSWERS = (*DEVICE_ANSWERS, Answer(403, "not_a_box", "the device is a sender, not a box"))


def require_admin(settings: SettingsDep, credentials: AdminBearerDep) -> str:
    """The admin's name for the audit trail (there is one admin identity: the token's holder)."""
    expected = settings.admin_token
    if expected is None:
        raise ApiError(
            403, "admin_disabled", "The admin API is off: set COALESCE_CLOUD_ADMIN_TOKEN on the server."
        )
    if credentials is None or not admin_token_matches(credentials.credentials, expected.get_secret_value()):
        raise unauthenticated("Send 'Authorization: Bearer <admin token>'.")
    return "admin"


AdminDep = Annotated[str, Depends(require_admin)]
ADMIN_ANSWERS = (UNAUTHENTICATED, Answer(403, "admin_disabled", "the server has no admin token configured"))
