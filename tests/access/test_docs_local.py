"""The API explorer (/api/v1/docs) loads nothing from another origin (issue 10, item 12): the
tokens live on this origin, so a script from a CDN would hold them too, and an isolated
network reaches no CDN. Swagger UI comes from the npm package swagger-ui-dist, copied by the
web build (scripts/setup.sh)."""

from __future__ import annotations

import re

import httpx


def _directives(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


async def test_docs_page_is_served_from_this_origin_only(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/docs")  # no token: the page is open, the API it calls is not
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "SwaggerUIBundle" not in html  # no inline script
    refs = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", html)
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert any(x.endswith("swagger-ui-bundle.js") for x in refs) and any(x.endswith(".css") for x in refs)
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref  # this origin
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), html
    csp = _directives(r.headers["content-security-policy"])
    assert csp["script-src"] == ["'self'"] and csp["default-src"] == ["'self'"]
    assert "'unsafe-eval'" not in r.headers["content-security-policy"]
    for d in ("style-src", "img-src", "connect-src", "font-src"):
        assert all(not re.match(r"https?:|\*", v) for v in csp[d]), (d, csp[d])
    # Every file it loads is served here (and they say nothing about another origin's scripts).
    for ref in refs:
        a = await client.get(ref)
        assert a.status_code == 200 and a.content, ref
        assert _directives(a.headers["content-security-policy"])["script-src"] == ["'self'"]
    js = await client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith("text/javascript") and len(js.content) > 100_000
    init = await client.get("/api/v1/docs/assets/docs-init.js")
    assert "SwaggerUIBundle" in init.text and "/api/v1/openapi.json" not in init.text  # read from the page
    # Only the explorer's own files: nothing else of the package through this route.
    for name in ("..%2Fplayer.js", "index.html", "swagger-ui.js.map", "secret.key", "audit.key",
                 "..%2F..%2F..%2F..%2Fvar%2Fsecret.key", "sip_password"):
        assert (await client.get(f"/api/v1/docs/assets/{name}")).status_code == 404
