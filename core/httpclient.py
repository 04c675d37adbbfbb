"""HTTP requests procsight sends (the agent's and the otlp_http exporter's records, `procsight search`/`top`)
never follow a redirect.

urllib follows a 301, 302 or 303 with a GET to the `Location`: the POST's body is dropped, its other headers
(the bearer token, the configured headers) go to whatever host `Location` names, and the 200 found there is
read as the POST's answer, so records were counted delivered that no one received. With `opener()` a 3xx is an
`HTTPError` like any other answer, and `redirect_hint` says where it pointed.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from typing import Any


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any) -> None:  # no new request: urllib raises the 3xx as an HTTPError
        return None


def opener(*handlers: urllib.request.BaseHandler, context: ssl.SSLContext | None = None
           ) -> urllib.request.OpenerDirector:
    """urllib's opener with `handlers`, HTTPS through `context` when given, and no redirects followed."""
    extra = [urllib.request.HTTPSHandler(context=context)] if context is not None else []
    return urllib.request.build_opener(_RefuseRedirects(), *extra, *handlers)


def redirect_hint(error: urllib.error.HTTPError) -> str:
    """For a 3xx answer, what to do about it; "" for any other."""
    if not 300 <= error.code < 400:
        return ""
    location = (error.headers.get("Location") or "?")[:200]
    return f" (a redirect to {location}: procsight does not follow redirects; configure that address instead)"
