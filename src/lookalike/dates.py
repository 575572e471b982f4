"""Dates users give (``--after``/``--before``, the API's ``after``/``before``): one check for every surface.

A date is a real calendar day written ``YYYY-MM-DD``: ``2021-13-45`` (no such month), ``2021-02-30`` (no
such day) and ``2021-01-01xyz`` (trailing text) are refused with one line instead of being compared as
strings against the photos' EXIF dates.
"""

from __future__ import annotations

import argparse
import re
from datetime import date

from lookalike.errors import LookalikeError

DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"  # the shape; the calendar is checked by date.fromisoformat
_DAY = re.compile(DAY_PATTERN)


class DateError(LookalikeError, ValueError):
    """Not a valid YYYY-MM-DD day (a ValueError too, so pydantic validators report it as a 422)."""


def check_day(text: str, name: str = "date") -> str:
    """``text`` if it is a valid YYYY-MM-DD calendar day, else a :class:`DateError`."""
    value = str(text).strip()
    if not _DAY.match(value):
        raise DateError(f"{name} must be a day written YYYY-MM-DD, not {text!r}")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise DateError(f"{name} {text!r} is not a day of the calendar (YYYY-MM-DD)") from None
    return value


def day_arg(text: str) -> str:
    """An argparse type: a bad date is a usage error (exit 2)."""
    try:
        return check_day(text)
    except DateError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
