"""One module per resource; ``api_router`` gathers them under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from coalesce_cloud.api.routes import admin, devices, enroll, meetings, turn, updates, utils, web_guests

api_router = APIRouter()
for module in (utils, enroll, devices, meetings, turn, updates, web_guests, admin):
    api_router.include_router(module.router)
