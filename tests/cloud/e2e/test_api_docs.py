"""The API's /docs page works with no internet: a real Chromium renders it from the cloud alone."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from playwright.sync_api import Route, sync_playwright

from coalesce_cloud.stack import LocalCloud

CHROMIUM = "/usr/bin/chromium"


def render_docs(url: str) -> tuple[str, list[str]]:
    """The title Swagger UI shows at ``url`` once it has read the API's schema, and the addresses the page
    asked for that are not the cloud's (each refused, as a machine without internet would)."""
    cloud = urlsplit(url).netloc
    elsewhere: list[str] = []

    def only_the_cloud(route: Route) -> None:
        if urlsplit(route.request.url).netloc == cloud:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
        try:
            page = browser.new_page(ignore_https_errors=True)  # the local cloud's own CA
            page.route("**/*", only_the_cloud)
            page.goto(url)
            title = page.locator(".swagger-ui .info .title")
            title.wait_for(timeout=20_000)
            # The operations are listed, read from the API's own schema.
            page.locator(".opblock-summary-path", has_text="/api/v1/meetings").first.wait_for(timeout=20_000)
            return title.inner_text(), elsewhere
        finally:
            browser.close()


async def test_the_docs_page_renders_the_api_with_every_file_from_the_cloud_itself(
    local_cloud: LocalCloud,
) -> None:
    title, elsewhere = await asyncio.to_thread(render_docs, f"{local_cloud.api_url}/docs")
    assert "Coalesce cloud" in title
    assert elsewhere == [], "the page asked for files from elsewhere"
