"""The REST API's taught words (Library.teach / concepts / forget): list, teach (examples are indexed image
ids: the server never reads a file a client names), forget. Relevance feedback is part of every search
(``more_like`` / ``less_like`` in server/app.py's SearchOptions). Mounted by server/app.py with the same token
as every other /api route."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from lookalike.search.plan import MAX_ID
from lookalike.server.openapi import errors

if TYPE_CHECKING:
    from lookalike.server.app import _Api

MAX_EXAMPLES = 1000
ImageIds = list[Annotated[int, Field(ge=1, le=MAX_ID)]]


class TeachBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    word: str = Field(min_length=1, max_length=60, description="the word (or short phrase) to teach")
    examples: ImageIds = Field(default_factory=list, max_length=MAX_EXAMPLES,
                               description="ids of indexed images that show it")
    counter_examples: ImageIds = Field(default_factory=list, max_length=MAX_EXAMPLES,
                                       description="ids of indexed images that do not")


def router(api: "_Api") -> APIRouter:
    r = APIRouter(prefix="/api", tags=["concepts"])
    lib = api.lib

    @r.get("/concepts", summary="The taught words: examples, counter-examples, model, estimated precision")
    def concepts() -> dict[str, Any]:
        return {"concepts": lib.concepts()}

    @r.post("/concepts", summary="Teach a word from indexed images (teaching a known word adds examples)",
            responses=errors(404, 409))
    def teach(body: TeachBody) -> dict[str, Any]:
        return {"concept": lib.teach(body.word, list(body.examples), list(body.counter_examples))}

    @r.delete("/concepts/{word}", summary="Forget a taught word")
    def forget(word: Annotated[str, PathParam(min_length=1, max_length=60)]) -> dict[str, Any]:
        return {"forgotten": lib.forget(word)}

    return r
