"""axe-core, the accessibility engine, for the browser tests: the pinned release from the npm
registry, checked against its published integrity (SHA-512) and cached under .cache/ (not
committed), then run in each page the tests visit.

`violations(page)` injects it through the DevTools protocol (Playwright's evaluate), which the
pages' Content-Security-Policy does not block, so the pages are checked with their real
headers.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from typing import Any

import httpx
from playwright.async_api import Page

from tests.harness import ROOT

VERSION = "4.14.1"
TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"
INTEGRITY = (  # dist.integrity of the release in the npm registry
    "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2"
    "rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
)
CACHED = ROOT / ".cache" / "axe-core" / VERSION / "axe.min.js"
SEVERE = ("serious", "critical")


def axe_source() -> str:
    """axe.min.js of the pinned release: from the cache, or downloaded and checked once."""
    if not CACHED.is_file():
        tarball = httpx.get(TARBALL, timeout=60, follow_redirects=True).raise_for_status().content
        digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
        if f"sha512-{digest}" != INTEGRITY:
            raise RuntimeError(f"{TARBALL} does not match its published integrity")
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            member = archive.extractfile("package/axe.min.js")
            assert member is not None
            source = member.read()
        CACHED.parent.mkdir(parents=True, exist_ok=True)
        partial = CACHED.with_suffix(".part")
        partial.write_bytes(source)
        partial.replace(CACHED)
    return CACHED.read_text(encoding="utf-8")


async def violations(page: Page, source: str) -> list[dict[str, Any]]:
    """The page's serious and critical accessibility violations (WCAG 2.x A/AA and best
    practices), each with its rule, impact and the offending elements."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(source)
    result: dict[str, Any] = await page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in SEVERE
    ]
