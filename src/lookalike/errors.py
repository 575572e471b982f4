"""User-facing errors: every one carries a single line that says what was wrong and what to do."""

from __future__ import annotations


class LookalikeError(Exception):
    """Base class. ``str(err)`` is one line, fit to print to a user."""

    status = 400  # HTTP status the REST API answers with

    def __str__(self) -> str:  # keep messages on one line whatever was passed in
        return " ".join(super().__str__().split())


class ImageError(LookalikeError):
    """An image could not be read: corrupt, truncated, empty, too large, not an image."""

    status = 422


class NotFound(LookalikeError):
    status = 404


class TooLarge(LookalikeError):
    status = 413


class Forbidden(LookalikeError):
    status = 403


class ModelMismatch(LookalikeError):
    """The index was built by another model than the one asked for."""

    status = 409
