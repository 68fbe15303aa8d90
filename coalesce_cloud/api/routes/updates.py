"""``GET /updates/{platform}``: the newest signed update manifest for a platform (public)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Path

from coalesce_cloud.api.deps import ContextDep
from coalesce_cloud.api.errors import VALIDATION, Answer, ApiError, documented
from coalesce_cloud.api.schemas import SignedManifest
from coalesce_cloud.updates import ManifestInvalid, load_manifest, sign_manifest

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/updates", tags=["updates"])

NO_UPDATE = Answer(404, "no_update", "no update is published for this platform")


@router.get("/{platform}", response_model=SignedManifest, responses=documented(NO_UPDATE, VALIDATION))
def read_update(context: ContextDep, platform: str = Path(max_length=40)) -> dict[str, Any]:
    """The file ``<manifest_dir>/<platform>.json`` (read on each request, so publishing a release is
    writing one file), else the platform's entry in the settings."""
    settings = context.settings
    try:
        manifest = load_manifest(settings.manifest_dir, platform)
    except ManifestInvalid as exc:
        logger.error("update manifest for %s is broken: %s", platform, exc)
        manifest = None
    else:
        manifest = manifest or settings.updates.inline_manifest(platform)
    if manifest is None:
        raise ApiError(404, "no_update", f"No update is published for {platform[:40]}.")
    return sign_manifest(context.signing_key, manifest)
