"""The ASGI app: ``create_app(settings)``; serve it with uvicorn (``coalesce-cloud serve``).

Its lifespan brings up, in order: the database engine and schema (Alembic ``upgrade head``), the update
signing key (created 0600 in the state folder on first start when none is configured), the XMPP admin
client (ejabberd's HTTP API unless one is injected), and the service account that sends notices to
boxes (``coalesce-cloud@<domain>``, re-passworded at random on every start: nobody logs in with it),
and the sweeper that removes expired web guests (:mod:`coalesce_cloud.guest_expiry`).
On shutdown it closes what it opened. Everything the routes need is in ``app.state.context``.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from coalesce_cloud.api.deps import AppContext, Clock
from coalesce_cloud.api.errors import BodySizeLimit, install_error_handlers
from coalesce_cloud.api.routes import api_router
from coalesce_cloud.api.share_page import install_share_page
from coalesce_cloud.core.config import Settings
from coalesce_cloud.core.security import new_xmpp_password
from coalesce_cloud.core.turn import tls_at_an_address
from coalesce_cloud.db import create_db_engine, make_session_factory, run_migrations
from coalesce_cloud.guest_expiry import GuestExpiry
from coalesce_cloud.updates import load_or_create_signing_key, public_key_b64
from coalesce_cloud.xmpp_admin import EjabberdHttpAdmin, XmppAdmin, ensure_account

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, xmpp_admin: XmppAdmin | None = None, clock: Clock = utc_now) -> FastAPI:
    """The cloud's REST API. ``xmpp_admin`` replaces the ejabberd client (the app does not close an
    injected one); ``clock`` replaces the wall clock (tests move time without sleeping)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # The system's MIME types, read here off the loop: the first /docs file would read them inside it.
            await run_in_threadpool(mimetypes.init)
            engine = await run_in_threadpool(create_db_engine, settings.effective_database_url)
            stack.callback(engine.dispose)
            await run_in_threadpool(run_migrations, engine)
            signing_key = await run_in_threadpool(load_or_create_signing_key, settings.signing_key_path)
            admin = xmpp_admin
            if admin is None:
                xmpp = settings.xmpp
                ejabberd = EjabberdHttpAdmin(
                    xmpp.api_urls,
                    xmpp.domain,
                    user=xmpp.api_user,
                    password=xmpp.api_password.get_secret_value() if xmpp.api_password else None,
                    timeout=xmpp.api_timeout,
                )
                stack.push_async_callback(ejabberd.aclose)
                admin = ejabberd
            await ensure_account(admin, settings.xmpp.service_user, new_xmpp_password())
            sessions = make_session_factory(engine)
            expiry = await stack.enter_async_context(
                GuestExpiry(sessions, admin, settings.xmpp, clock, settings.web_guest_sweep_every)
            )
            app.state.context = AppContext(
                settings=settings,
                clock=clock,
                session_factory=sessions,
                xmpp_admin=admin,
                signing_key=signing_key,
                update_public_key=public_key_b64(signing_key),
                guest_expiry=expiry,
            )
            for region in settings.turn.regions:
                if tls_at_an_address(region):
                    logger.warning(
                        "TURN region %r: its TLS relay is at the IP address %s, which Firefox does not "
                        "use, so Firefox cannot relay over TLS (only peer to peer, or over TURN on UDP or "
                        "TCP); set the region's tls_host to a name its certificate carries",
                        region.name,
                        region.tls_name,
                    )
            logger.info("cloud API ready for %s (XMPP domain %s)", settings.public_url, settings.xmpp.domain)
            yield

    # FastAPI's own /docs page loads Swagger UI from a CDN: blank without internet. fastapi-offline serves
    # the same page with its files from the package, under /docs/assets.
    app = FastAPIOffline(
        title="Coalesce cloud",
        version="1",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs/assets",
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(api_router, prefix=API_PREFIX)
    install_share_page(app, settings)
    return app
