"""The REST API and the web page: a FastAPI app, thin over :class:`lookalike.library.Library`.

    from lookalike import Library
    from lookalike.server.app import create_app
    app = create_app(Library("~/photos-index"))      # then: uvicorn.run(app)

Every search goes through ``Library.search``, every record through ``Library.get``, indexing through
``Library.index``; errors are :class:`LookalikeError` subclasses whose ``.status`` becomes the HTTP status of a
``{"error": "...", "status": N}`` answer. See docs/server.md for the endpoints.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.utils
import logging
import os
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike import __version__
from lookalike.config import Settings
from lookalike.dates import DAY_PATTERN, check_day
from lookalike.errors import LookalikeError, TooLarge, explain_failure
from lookalike.library import Library, SearchResult
from lookalike.search.plan import MAX_ID, MAX_QUERY_CHARS
from lookalike.server.files import DEFAULT_THUMB, THUMB_SIZES, Thumbnails, media_type, stream_indexed
from lookalike.server.guards import (
    TOKEN_COOKIE,
    BodyLimit,
    HeadAsGet,
    SameOrigin,
    default_index_roots,
    resolve_index_folder,
    token_ok,
)
from lookalike.server.dupes_jobs import DupesJobs, dupes_routes
from lookalike.server.jobs import IndexJobs
from lookalike.server.openapi import declare_errors, errors
from lookalike.server.people import router as people_router
from lookalike.stores.base import Filters

log = logging.getLogger("lookalike.server")
STATIC = Path(__file__).with_name("static")
ImageId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="an indexed image's id")]
SEARCH_ERRORS = errors(403, 404, 409, 413)  # a URL to a private address; an unknown id; another model; too large
Day = Annotated[str, Field(pattern=DAY_PATTERN), AfterValidator(check_day)]  # dates.py: the CLI's check too
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s]+$"  # the schemes io/fetch.py fetches
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


# -- errors ----------------------------------------------------------------------------------------------------
class Unauthorized(LookalikeError):
    status = 401


Page = dict[str, Any]  # what the search endpoints answer (declared as their response model, for the schema)


def json_response(content: dict[str, Any]) -> Response:
    """A JSON answer encoded here, in the endpoint's worker thread, by pydantic's encoder (NaN as null, as
    FastAPI's own path gives). Returning the dict instead has FastAPI validate it against the response model
    in one more hop to the thread pool before encoding it (measured with bench/serve_load.py, docs/server.md)."""
    return Response(to_json(content, inf_nan_mode="null"), media_type="application/json")


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: object) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split()), "status": status, **extra}, status, headers=headers)


def _validation_message(err: RequestValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
        msg = str(e.get("msg"))
        if e.get("type") == "string_pattern_mismatch" and loc.split(".")[-1] == "url":  # not the regex itself
            msg = "only http:// and https:// URLs are fetched"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "invalid request: " + "; ".join(parts)


# -- request models ----------------------------------------------------------------------------------------------
class PageOptions(BaseModel):
    """A page of a list of photos and the filters on it: every search, and browsing the library."""

    limit: int = Field(24, ge=1, le=1000, description="at most this many results (a page)")
    offset: int = Field(0, ge=0, le=10_000, description="skip this many results (the next page: next_offset)")
    folder: str | None = Field(None, max_length=4096, description="only images in this folder and below")
    after: Day | None = Field(None, description="taken on/after this day (YYYY-MM-DD, a real calendar day)")
    before: Day | None = Field(None, description="taken before this day (YYYY-MM-DD, a real calendar day)")
    camera: str | None = Field(None, max_length=200, description="camera make/model contains this")
    min_size: int | None = Field(None, ge=1, le=1_000_000, description="shorter side at least this many pixels")

    def filters(self) -> Filters:
        return Filters(folder=self.folder or None, after=self.after, before=self.before, camera=self.camera or None,
                       min_size=self.min_size)


class SearchOptions(PageOptions):
    """Options every search takes (query parameters, or fields of a JSON body)."""

    threshold: float | None = Field(None, ge=0, le=1, allow_inf_nan=False,
                                     description="drop results scoring below this (every score is in [0, 1])")
    by: Literal["embedding", "tags", "cosine"] = Field(
        "embedding", description="image queries: embeddings (re-ranked), class scores, or plain embedding cosine")
    more_like: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=1000, description="relevance feedback: ids of results marked good")
    less_like: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        default_factory=list, max_length=1000, description="relevance feedback: ids of results marked bad (dropped)")
    copies: bool = Field(True, description="image queries: verify the top results as copies of the query or not "
                                           "(copy, copy_score; up to 10 geometric verifications, ~0.5 s of CPU)")


class SearchParams(SearchOptions):
    q: str | None = Field(None, max_length=MAX_QUERY_CHARS, description="keywords")
    url: str | None = Field(None, max_length=4096, pattern=URL_PATTERN, description="http(s) URL of a query image")
    id: int | None = Field(None, ge=1, le=MAX_ID, description="an indexed image's id: more like this")


class Base64Query(SearchOptions):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(description="the image file's bytes in base64 (a data: URL is accepted too)")


class UrlQuery(SearchOptions):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=4096, pattern=URL_PATTERN, description="http(s) URL of a query image")


class TextQuery(SearchOptions):
    model_config = ConfigDict(extra="forbid")
    q: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="keywords")


class IndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder: str = Field(max_length=4096, description="absolute path of a folder inside the server's index roots")
    rehash: bool = Field(False, description="read and hash every file, not only those whose size or mtime changed")


# -- the app -----------------------------------------------------------------------------------------------------
def create_app(library: Library, settings: Settings | None = None) -> FastAPI:
    """The FastAPI app over ``library``. ``settings`` (default: the library's) sets the request guards: upload
    cap, bomb guard, URL policy, token, index roots, CORS."""
    settings = settings or library.settings
    lib = library.with_settings(settings)  # searches under these settings, sharing the library's store
    api = _Api(lib, settings)
    app = FastAPI(title="lookalike", version=__version__, docs_url=None, redoc_url=None,
                  description="Offline image search: by example image (upload, base64, URL, indexed id), by "
                              "keywords; duplicates; thumbnails; indexing jobs. Errors are "
                              '`{"error": "...", "status": N}`.')
    app.state.library = lib
    app.state.jobs = api.jobs
    app.state.dupes_jobs = api.dupes_jobs
    _add_error_handlers(app)
    app.include_router(api.public_router())
    app.include_router(api.router(), dependencies=[Depends(api.require_token)])
    from lookalike.server.browse import routes as browse_routes

    app.include_router(browse_routes(api), dependencies=[Depends(api.require_token)])
    app.include_router(dupes_routes(api), dependencies=[Depends(api.require_token)])
    app.include_router(people_router(api), dependencies=[Depends(api.require_token)])
    from lookalike.server.concepts import router as concepts_router

    app.include_router(concepts_router(api), dependencies=[Depends(api.require_token)])
    declare_errors(app)
    _add_page(app)
    _add_docs(app)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(BodyLimit, max_bytes=body_cap(settings), raw_bytes=body_cap(settings, raw=True))
    app.add_middleware(SameOrigin, allowed_origins=settings.cors_origins, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(SecurityHeaders)  # around the guards: their refusals carry the headers too
    app.add_middleware(HeadAsGet)
    return app


def body_cap(settings: Settings, raw: bool = False) -> int:
    """The largest request body: base64 makes a JSON body 4/3 of the image (the image itself is checked
    against the cap after decoding); ``raw``: any other body (a multipart upload: the image and its headers)."""
    image = settings.max_upload_mb * 1_000_000
    return image + 64_000 if raw else image * 4 // 3 + 64_000


class _Api:
    def __init__(self, lib: Library, settings: Settings) -> None:
        self.lib = lib
        self.settings = settings
        self.max_image_bytes = settings.max_upload_mb * 1_000_000
        self.thumbs = Thumbnails(Path(settings.library) / "thumbs", max_pixels=settings.max_pixels,
                                 max_bytes=settings.max_file_mb * 1_000_000)
        self.jobs = IndexJobs(lib)
        self.dupes_jobs = DupesJobs(lib)
        self.index_roots = tuple(settings.index_roots) or default_index_roots()

    # -- auth --------------------------------------------------------------------------------------------------
    # async: a cheap check on the event loop, not a hop to a worker thread (a sync dependency runs in the
    # thread pool, one more hand-off per request)
    async def require_token(self, request: Request) -> None:
        if not token_ok(self.settings.token, request.headers.get("authorization"), request.cookies.get(TOKEN_COOKIE),
                        self.settings.write_token):  # the write token may read too
            raise Unauthorized("this server needs its API token: send 'Authorization: Bearer TOKEN'")

    async def require_write(self, request: Request) -> None:
        """Endpoints that change the library or cost minutes (indexing, duplicates, removing copies): the
        write token when one is set (``--write-token``), else the API token when one is set."""
        expected = self.settings.write_token or self.settings.token
        if not token_ok(expected, request.headers.get("authorization"), request.cookies.get(TOKEN_COOKIE)):
            raise Unauthorized("this endpoint changes the library or costs minutes: send the server's write token "
                               "as 'Authorization: Bearer TOKEN'")

    # -- routes ------------------------------------------------------------------------------------------------
    def public_router(self) -> APIRouter:
        r = APIRouter(prefix="/api", tags=["health"])

        @r.get("/health", summary="Liveness: answers without a token")
        def health() -> dict[str, object]:
            return {"status": "ok", "version": __version__, "token_required": bool(self.settings.token)}

        return r

    def router(self) -> APIRouter:  # noqa: C901 - one place that lists every route
        r = APIRouter(prefix="/api")

        @r.get("/search", tags=["search"], summary="Search by keywords (q), an image URL (url) or an indexed id (id)",
               responses=SEARCH_ERRORS, response_model=Page)
        def search(request: Request, params: Annotated[SearchParams, Query()]) -> Response:
            given = {k: v for k, v in (("text", params.q), ("url", params.url), ("image_id", params.id))
                     if v not in (None, "")}
            if len(given) != 1 and (given or not (params.more_like or params.less_like)):
                raise LookalikeError("give exactly one of q (keywords), url (image URL) or id (indexed image id)")
            return json_response(self.search(request, params, **given))

        @r.post("/search/upload", tags=["search"], responses=SEARCH_ERRORS,
                summary="Search by an uploaded image (multipart field 'image'); "
                                                           "options as query parameters", response_model=Page)
        def search_upload(request: Request, params: Annotated[SearchOptions, Query()],
                          image: UploadFile = File(description="the query image")) -> Response:
            data = image.file.read(self.max_image_bytes + 1)
            self._check_size(len(data))
            return json_response(self.search(request, params, image=data))

        @r.post("/search/base64", tags=["search"], summary="Search by an image given as base64 in a JSON body",
                responses=SEARCH_ERRORS, response_model=Page)
        def search_base64(request: Request, body: Base64Query) -> Response:
            return json_response(self.search(request, body, image=self._b64(body.image)))

        @r.post("/search/url", tags=["search"], summary="Search by the image at an http(s) URL",
                responses=SEARCH_ERRORS, response_model=Page)
        def search_url(request: Request, body: UrlQuery) -> Response:
            return json_response(self.search(request, body, url=body.url))

        @r.post("/search/text", tags=["search"], summary="Search by keywords in a JSON body",
                responses=SEARCH_ERRORS, response_model=Page)
        def search_text(request: Request, body: TextQuery) -> Response:
            return json_response(self.search(request, body, text=body.q))

        @r.get("/images/{image_id}", tags=["images"], summary="An indexed image's metadata and tags",
               responses=errors(404))
        def image(request: Request, image_id: ImageId) -> dict[str, Any]:
            info = self.lib.get(image_id)
            d = dataclasses.asdict(info)
            d["tags"] = self.lib.tag_dicts(info.tags, limit=len(info.tags) or 1)
            d["name"] = os.path.basename(info.path)
            d["faces"] = [{"box": list(f.box)} for f in self.lib.store.faces([info.id]).get(info.id, [])]
            d.update(self._urls(request, info.id))
            return d

        @r.get("/images/{image_id}/similar", tags=["search"], summary="More like this indexed image",
               responses=errors(404, 409), response_model=Page)
        def similar(request: Request, image_id: ImageId, params: Annotated[SearchOptions, Query()]) -> Response:
            return json_response(self.search(request, params, image_id=image_id))

        @r.get("/images/{image_id}/thumb", tags=["images"], summary="A JPEG thumbnail (made once, then cached)",
               response_class=Response, responses={200: {"content": {"image/jpeg": {}}, "description": "the thumbnail"},
                                                   304: {"description": "not modified (the ETag sent is current)"},
                                                   **errors(404, 409)})
        def thumb(request: Request, image_id: ImageId,
                  size: Annotated[int, Query(description=f"one of {THUMB_SIZES}",
                                             json_schema_extra={"enum": list(THUMB_SIZES)})] = DEFAULT_THUMB) -> Response:
            info = self.lib.get(image_id)
            etag = f'"{info.sha}-{size}"'
            headers = {"Cache-Control": "private, max-age=3600", "ETag": etag}
            if request.headers.get("if-none-match") == etag and self.thumbs.path(info, size).is_file():
                return Response(status_code=304, headers=headers)
            return FileResponse(self.thumbs.get(info, size), media_type="image/jpeg", headers=headers)

        @r.get("/images/{image_id}/file", tags=["images"], summary="The original file (indexed images only)",
               response_class=Response, responses={200: {"content": {"image/*": {}}, "description": "the file"},
                                                   **errors(404, 409)})
        def original(image_id: ImageId) -> Response:
            info = self.lib.get(image_id)
            body, st = stream_indexed(info)  # no symlink followed; the very file indexed (device, inode, ...)
            name = urllib.parse.quote(os.path.basename(info.path))
            return StreamingResponse(body, media_type=media_type(info.path), headers={
                "Content-Length": str(st.st_size), "Content-Disposition": f"inline; filename*=utf-8''{name}",
                "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
                "Cache-Control": "private, max-age=3600"})

        @r.get("/folders", tags=["library"], summary="Folders that hold indexed images, with counts")
        def folders() -> dict[str, Any]:
            return {"folders": [{"path": p, "count": n} for p, n in self.lib.folders()]}

        @r.get("/stats", tags=["library"], summary="Counts, model, store size, the current indexing job")
        def stats() -> dict[str, Any]:
            info = self.lib.info()
            job = self.jobs.latest()
            return {**info, "job": job.as_dict() if job else None, "index_roots": list(self.index_roots),
                    "max_upload_mb": self.settings.max_upload_mb}

        @r.post("/index", tags=["indexing"], status_code=202, dependencies=[Depends(self.require_write)],
                summary="Start indexing a folder (inside the server's index roots); one job at a time",
                responses=errors(403, 404, 409))
        def start_index(request: Request, body: IndexRequest, response: Response) -> dict[str, Any]:
            folder = resolve_index_folder(body.folder, self.index_roots)
            job = self.jobs.start(folder, rehash=body.rehash)
            response.headers["Location"] = f"{request.scope.get('root_path', '')}/api/index/{job.id}"
            return job.as_dict()

        @r.get("/index", tags=["indexing"], summary="The latest indexing jobs, newest first")
        def jobs() -> dict[str, Any]:
            recent = self.jobs.recent()
            return {"job": recent[0].as_dict() if recent else None, "jobs": [j.as_dict() for j in recent]}

        @r.get("/index/{job_id}", tags=["indexing"], summary="An indexing job's progress and, once done, summary",
               responses=errors(404))
        def job(job_id: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
            return self.jobs.get(job_id).as_dict()

        return r

    # -- helpers -----------------------------------------------------------------------------------------------
    def search(self, request: Request, opts: SearchOptions, **query: Any) -> dict[str, Any]:
        """One page of results: ``offset`` skips, one more than the page tells whether a next page exists."""
        end = opts.offset + opts.limit
        res = self.lib.search(**query, by=opts.by, limit=end + 1, threshold=opts.threshold, filters=opts.filters(),
                              copies=opts.copies, more_like=opts.more_like, less_like=opts.less_like)
        more = len(res.results) > end
        res.results = res.results[opts.offset:end]
        out = self._present(request, res)
        out["offset"], out["next_offset"] = opts.offset, (end if more else None)
        return out

    def _present(self, request: Request, res: SearchResult) -> dict[str, Any]:
        d = res.as_dict()
        for r in d["results"]:  # type: ignore[union-attr]
            self.present_result(request, r)
        return d

    def present_result(self, request: Request, r: dict[str, Any]) -> dict[str, Any]:
        r["name"] = os.path.basename(str(r["path"]))
        r.update(self._urls(request, int(r["id"])))
        return r

    @staticmethod
    def _urls(request: Request, image_id: int) -> dict[str, str]:
        base = f"{request.scope.get('root_path', '')}/api/images/{image_id}"
        return {"thumb": f"{base}/thumb", "file": f"{base}/file", "similar": f"{base}/similar"}

    def _check_size(self, n: int) -> None:
        if n > self.max_image_bytes:
            raise TooLarge(f"image too large: the limit is {self.settings.max_upload_mb} MB (server option "
                           "--max-upload-mb)")

    def _b64(self, text: str) -> bytes:
        if text.startswith("data:"):
            head, _, text = text.partition(",")
            if ";base64" not in head:
                raise LookalikeError("the data: URL is not base64-encoded")
        text = "".join(text.split())
        self._check_size(len(text) * 3 // 4 - 2)
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise LookalikeError("image is not valid base64") from None
        self._check_size(len(data))
        return data

    def present_dupes(self, request: Request, report) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        from lookalike.trash import group_reasons

        out = report.as_dict()
        for g, why in zip(out["groups"], group_reasons(self.lib.store, report.groups), strict=True):
            g["why_best"] = why
            for item in g["items"]:
                item["name"] = os.path.basename(str(item["path"]))
                item.update(self._urls(request, int(item["id"])))
        return out


# -- errors, page, docs, headers ---------------------------------------------------------------------------------
def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LookalikeError)
    async def lookalike_error(request: Request, err: LookalikeError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        return _error(err.status, str(err), headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        message = err.detail if err.status_code != 404 or err.detail != "Not Found" else f"not found: {request.url.path}"
        return _error(err.status_code, str(message), dict(err.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in err.errors()]
        return _error(422, _validation_message(err), details=details)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        known = explain_failure(err)  # a full disk, a text a store cannot bind, ...
        if known is not None:
            return _error(known.status, str(known))
        log.exception("unexpected error on %s", request.url.path)
        return _error(500, f"internal error: {type(err).__name__}: {err}")


def _add_page(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def _add_docs(app: FastAPI) -> None:
    """OpenAPI docs at /docs from Swagger UI files installed with the server extra (no CDN: works offline)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        import swagger_ui  # type: ignore[import-untyped]

        assets: Path | None = Path(swagger_ui.__file__).with_name("static")
        if not (assets / "swagger-ui-bundle.js").is_file():  # type: ignore[operator]
            assets = None
    except ImportError:
        assets = None
    if assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")
        urls = {"swagger_js_url": "/docs-assets/swagger-ui-bundle.js", "swagger_css_url": "/docs-assets/swagger-ui.css",
                "swagger_favicon_url": "/docs-assets/favicon-32x32.png"}
    else:  # pragma: no cover - falls back on the CDN
        urls = {}

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        fixed = {k: root + v for k, v in urls.items()}
        return get_swagger_ui_html(openapi_url=root + (app.openapi_url or "/openapi.json"),
                                   title="lookalike API", **fixed)


class SecurityHeaders:
    """nosniff, no referrer, no framing; a strict Content-Security-Policy everywhere but the Swagger page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        strict = not scope.get("path", "").startswith("/docs")

        async def send_with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers") or [])
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                            (b"x-frame-options", b"DENY")]
                if strict:
                    headers.append((b"content-security-policy", CSP.encode()))
                msg["headers"] = headers
            await send(msg)

        await self.app(scope, receive, send_with_headers)
