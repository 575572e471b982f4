"""The REST API's people routes (search/people.py through the Library): list, faces, name a person or a face,
and a face's picture. Mounted by server/app.py with the same token as every other /api route."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from lookalike.errors import NotFound
from lookalike.search.people import MAX_NAME, Person
from lookalike.search.plan import MAX_ID

if TYPE_CHECKING:
    from lookalike.server.app import _Api

PersonId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="a person's id (GET /api/people)")]
FACE_SIZES = (96, 160, 256)


class NameBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=MAX_NAME, description="the person's name; a name another person "
                                                                      "has merges the two")


def router(api: "_Api") -> APIRouter:
    r = APIRouter(prefix="/api", tags=["people"])
    lib = api.lib

    def present(request: Request, p: Person) -> dict[str, Any]:
        d = p.as_dict()
        if p.sample:
            d["sample"]["url"] = face_url(request, p.sample.image_id, p.sample.index)  # type: ignore[index]
        return d

    @r.get("/people", summary="People found in the faces (index --faces), most faces first, with a sample face")
    def people(request: Request, min_faces: Annotated[int, Query(ge=0, le=1_000_000)] = 1) -> dict[str, Any]:
        return {"people": [present(request, p) for p in lib.people(min_faces=min_faces)]}

    @r.get("/people/{person_id}", summary="A person and their faces, most typical first")
    def person(request: Request, person_id: PersonId) -> dict[str, Any]:
        p, faces = lib.person_faces(person_id)
        return {"person": present(request, p),
                "faces": [{**f.as_dict(), "url": face_url(request, f.image_id, f.index)} for f in faces]}

    @r.post("/people/{person_id}/name", summary="Name a person; a name another person has merges the two")
    def name(request: Request, person_id: PersonId, body: NameBody) -> dict[str, Any]:
        return {"person": present(request, lib.name_person(person_id, body.name))}

    @r.post("/people/{person_id}/unname", summary="Remove a person's name (its faces are clustering's again)")
    def unname(request: Request, person_id: PersonId) -> dict[str, Any]:
        return {"person": present(request, lib.unname_person(person_id))}

    @r.get("/images/{image_id}/people", summary="The faces of a photo, each with its person (id and name)")
    def image_people(request: Request, image_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> dict[str, Any]:
        return {"faces": [{**f.as_dict(), "url": face_url(request, image_id, f.index), "person": pid, "name": name}
                          for f, pid, name in lib.image_people(image_id)]}

    @r.post("/images/{image_id}/faces/{index}/name",
            summary="Move one face to the person with this name (created when new): splitting a cluster")
    def name_face(request: Request, image_id: Annotated[int, PathParam(ge=1, le=MAX_ID)],
                  index: Annotated[int, PathParam(ge=0, le=10_000)], body: NameBody) -> dict[str, Any]:
        return {"person": present(request, lib.name_face(image_id, index, body.name))}

    @r.get("/images/{image_id}/faces/{index}", summary="A face cut out of its photo (JPEG)",
           response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    def face(image_id: Annotated[int, PathParam(ge=1, le=MAX_ID)],
             index: Annotated[int, PathParam(ge=0, le=10_000)],
             size: Annotated[int, Query(ge=1, le=4096, description=f"one of {FACE_SIZES} (another is taken to the nearest)")] = 160) -> Response:
        from lookalike.grid import face_crop
        from lookalike.server.files import check_unchanged

        if size not in FACE_SIZES:
            size = min(FACE_SIZES, key=lambda s: abs(s - size))
        info = lib.get(image_id)
        faces = lib.store.faces([image_id]).get(image_id, [])
        if index >= len(faces):
            raise NotFound(f"image {image_id} has {len(faces)} face(s)")
        check_unchanged(info)
        img = face_crop(info.path, faces[index].box, size, max_pixels=api.settings.max_pixels,
                        max_bytes=api.settings.max_file_mb * 1_000_000)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=88)
        return Response(buf.getvalue(), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600", "ETag": f'"{info.sha}-{index}-{size}"'})

    return r


def face_url(request: Request, image_id: int, index: int) -> str:
    return f"{request.scope.get('root_path', '')}/api/images/{image_id}/faces/{index}"
