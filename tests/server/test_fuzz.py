"""The REST API under a real fuzzer (issue 12, item 9): schemathesis against the app's own OpenAPI schema, over
loopback, bounded (25 examples per operation). It must find no server error, no status the schema does not
declare and no response that breaks its declared schema. Failures it found became plain tests
(test_app.py, test_dupes_jobs.py).

Left out: URL queries (a fuzzed URL would make the server resolve and fetch random internet hosts) and the two
endpoints that move files to the desktop trash (tested in test_browse_api.py with a private trash)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lookalike.samples import copy_samples  # noqa: E402
from lookalike.server.app import create_app  # noqa: E402

from .conftest import LiveServer, make_settings  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Its own small library (fuzzed writes cannot touch the session library), served on a loopback port."""
    from lookalike.library import Library

    root = tmp_path_factory.mktemp("fuzz")
    copy_samples(root / "photos", ["rocket", "coffee", "tent", "chelsea"])
    lib = Library(settings=make_settings(root / "library", index_roots=(str(root),)))
    lib.index([root / "photos"])
    with LiveServer(create_app(lib)) as server:
        yield server
    lib.close()


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: LiveServer):  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_url(fuzzed_server.url + "openapi.json")
    schema = schema.exclude(path="/api/search/url").exclude(path_regex="^/api/dupes/(remove|undo)$")

    @schema.hook
    def map_query(ctx, query):  # type: ignore[no-untyped-def]  # noqa: ANN001
        if query:
            query.pop("url", None)  # GET /api/search?url=...: no random internet host is ever fetched
        return query

    return schema


def test_api_conforms_to_its_schema(api_schema) -> None:  # type: ignore[no-untyped-def]
    """Every operation, 25 generated requests each (schemathesis' pytest plugin does not run under pytest 9, so
    hypothesis drives each operation's strategy here)."""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None, phases=[Phase.explicit, Phase.generate])
        def run(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(checks=CHECKS, timeout=60)

        try:
            run()
        except BaseException as err:  # noqa: BLE001 - collect every operation's failure (groups too), report all
            if isinstance(err, KeyboardInterrupt):
                raise
            failures.append(f"{op.label}: {' '.join(str(err).split())[:1500]}")
    assert not failures, "\n\n".join(failures)


def test_the_schema_declares_what_the_api_answers(fuzzed_server: LiveServer) -> None:
    import httpx

    spec = httpx.get(fuzzed_server.url + "openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert {"400", "401", "422", "503"} <= codes, (method, path)
            if method == "post":
                assert "413" in codes, path
            for code, resp in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert "ErrorBody" in str(resp), (method, path, code)  # our error shape, not FastAPI's
    thumb = spec["paths"]["/api/images/{image_id}/thumb"]["get"]
    size = next(p for p in thumb["parameters"] if p["name"] == "size")
    assert size["schema"]["enum"] == [128, 256, 512]
    assert "image/jpeg" in thumb["responses"]["200"]["content"]
    url = spec["components"]["schemas"]["UrlQuery"]["properties"]["url"]
    assert url["pattern"].startswith("^[Hh][Tt][Tt][Pp]")
    assert "409" in spec["paths"]["/api/dupes/jobs"]["post"]["responses"]


def test_found_by_the_fuzzer_unknown_ids_are_declared_404s(fuzzed_server: LiveServer) -> None:
    """Replays of what the fuzzer found: each answer is one the schema declares for its operation."""
    import httpx

    spec = httpx.get(fuzzed_server.url + "openapi.json").json()
    for path in ("/api/images/2262/copies", "/api/images/2262/similar", "/api/images/2262", "/api/images/2262/file"):
        r = httpx.get(fuzzed_server.url + path.lstrip("/"))
        template = path.replace("2262", "{image_id}")
        assert r.status_code == 404 and str(r.status_code) in spec["paths"][template]["get"]["responses"], path
