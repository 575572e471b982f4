"""The web page's library routes: browsing (newest first, paged), "find copies", and the duplicates actions
(keep the best copy, move the others to the trash; undo) over :mod:`lookalike.trash`.

``routes(api)`` is mounted by ``create_app`` behind the same token guard as the other API routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from lookalike.search.dupes import DEFAULT_THRESHOLD
from lookalike.server.openapi import errors
from lookalike.server.app import MAX_ID, ImageId, PageOptions, SearchOptions  # create_app imports this module when called
from lookalike.trash import actions, remove_copies, undo


class RemoveGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep: int = Field(ge=1, le=MAX_ID, strict=True, description="the copy to keep (its file must still be there)")
    remove: list[Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]] = Field(
        min_length=1, max_length=10_000, description="the copies to move to the trash (image ids, not the kept one)")


class RemoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groups: list[RemoveGroup] = Field(min_length=1, max_length=10_000)


class UndoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str | None = Field(None, max_length=64, description="an action id (default: the latest not undone)")


def routes(api) -> APIRouter:  # type: ignore[no-untyped-def]
    r = APIRouter(prefix="/api")

    @r.get("/browse", tags=["library"], summary="The library, newest first by date taken, a page at a time")
    def browse(request: Request, params: Annotated[PageOptions, Query()]) -> dict[str, Any]:
        results, total = api.lib.browse(params.filters(), offset=params.offset, limit=params.limit)
        end = params.offset + len(results)
        return {"kind": "browse", "total": total, "offset": params.offset,
                "next_offset": end if end < total and results else None,
                "results": [api.present_result(request, r.as_dict()) for r in results]}

    @r.get("/images/{image_id}/copies", tags=["search"], responses=errors(404, 409),
           summary="Copies and edited copies of an indexed image (cosine at or above the copy threshold)")
    def copies(request: Request, image_id: ImageId, params: Annotated[SearchOptions, Query()]) -> dict[str, Any]:
        floor = DEFAULT_THRESHOLD["embedding"]
        params = params.model_copy(update={"threshold": max(params.threshold or 0.0, floor)})
        out = api.search(request, params, image_id=image_id)
        out["copy_threshold"] = floor
        return out

    @r.post("/dupes/remove", tags=["library"], dependencies=[Depends(api.require_write)], responses=errors(404),
            summary="Keep one copy of each group and move the others to the desktop trash (undoable)")
    def remove(body: RemoveRequest) -> dict[str, Any]:
        action = remove_copies(api.lib, [(g.keep, g.remove) for g in body.groups], quarantine=api.settings.quarantine)
        return action.as_dict()

    @r.get("/dupes/actions", tags=["library"], summary="The logged trash actions, newest first")
    def logged() -> dict[str, Any]:
        return {"actions": [a.as_dict() for a in reversed(actions(api.lib))],
                "moves_to": api.settings.quarantine or "trash"}  # where the next action will move copies

    @r.post("/dupes/undo", tags=["library"], dependencies=[Depends(api.require_write)], responses=errors(404),
            summary="Put back the files of a trash action (default: the latest)")
    def put_back(body: UndoRequest) -> dict[str, Any]:
        action, done = undo(api.lib, body.action)
        return {"action": action.as_dict(), "files": [{"path": p, "done": w} for p, w in done]}

    return r
