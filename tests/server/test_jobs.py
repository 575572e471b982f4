"""server/jobs.py: an indexing job's threads rank below the server's searches, also under `nice`."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from lookalike.server.jobs import lower_priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_lower_priority_is_relative_to_the_server_and_inherited() -> None:
    seen: dict[str, int] = {}

    def job() -> None:
        seen["before"] = _nice()
        lower_priority(10)
        seen["job"] = _nice()
        child = threading.Thread(target=lambda: seen.__setitem__("child", _nice()))  # e.g. a decoder thread
        child.start()
        child.join()

    server = _nice()
    t = threading.Thread(target=job)
    t.start()
    t.join()
    assert seen["before"] == server
    assert seen["job"] == min(19, server + 10)  # relative: under `nice` (10) the job goes to 19, not to 10
    assert seen["child"] == seen["job"]
    assert _nice() == server  # the searches' threads keep theirs
