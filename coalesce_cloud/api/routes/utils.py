"""Health check."""

from __future__ import annotations

from fastapi import APIRouter

from coalesce_cloud.api.schemas import Health

router = APIRouter(tags=["utils"])


@router.get("/health")
async def health() -> Health:
    return Health(status="ok")
