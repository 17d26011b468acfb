"""The dashboard: one static page (``index.html``, ``app.js``, ``style.css`` beside this file),
served by the API function at ``GET /dashboard`` and ``GET /dashboard/<file>``.

The page is plain HTML, CSS and JavaScript with its charts drawn as inline SVG: no build step, no
CDN, nothing fetched from anywhere but this API. Serving it needs no key (like ``/docs``): the page
asks for the API key once, keeps it in the browser's ``localStorage`` and sends it as
``Authorization: Bearer`` on every ``/v1`` call it makes, so the data stays behind the key.

Because that key sits in the page, the answers carry a strict Content-Security-Policy: scripts,
styles and requests from this origin only, no inline script, no framing. The page itself builds
every element with ``textContent`` (never HTML from data), so nothing a customer wrote can run.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from aws_lambda_powertools.event_handler import Response

from cascade.errors import NotFound

ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Small files, changed with each deployment: always revalidate rather than serve a stale page.
    "Cache-Control": "no-cache",
}


@cache
def asset(name: str) -> tuple[str, str]:
    """(content type, text) of one of the page's files; NotFound for any other name."""
    if name not in ASSETS:
        raise NotFound(f"no dashboard file {name!r}")
    return ASSETS[name], files(__name__).joinpath(name).read_text(encoding="utf-8")


def response(name: str = "index.html") -> Response[str]:
    """The API's answer for ``/dashboard`` (the page) or ``/dashboard/<name>`` (its script and styles)."""
    content_type, text = asset(name)
    return Response(status_code=200, content_type=content_type, body=text, headers=dict(SECURITY_HEADERS))


__all__ = ["ASSETS", "SECURITY_HEADERS", "asset", "response"]
