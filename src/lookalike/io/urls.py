"""Whether a query is a web address (``http://`` or ``https://``): a test that imports nothing, so that planning
a query does not load the fetching stage (:mod:`lookalike.io.fetch`: http.client, ssl, ~17 ms of CPU per process)."""

from __future__ import annotations


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))
