"""Work claims (stores/claims.py) in both stores: disjoint claims, leases that expire and are taken over,
files another indexer finished or wrote are left alone."""

from __future__ import annotations

import time

from lookalike.io.crawl import FileEntry
from lookalike.stores.base import ImageRecord

import numpy as np


def entries(n: int, start: int = 0) -> list[FileEntry]:
    return [FileEntry(f"/photos/c/img{i:03d}.jpg", 1000 + i, 1_700_000_000.0 + i) for i in range(start, start + n)]


def test_claims_are_disjoint_and_finished_ones_stay_taken(make_store) -> None:  # type: ignore[no-untyped-def]
    a, b = make_store(), make_store()  # two connections: two indexers
    files = entries(10)
    got_a = a.claim(files[:6], "A")
    assert [e.path for e in got_a.mine] == [e.path for e in files[:6]]
    got_b = b.claim(files, "B", since=got_a.now)
    assert [e.path for e in got_b.mine] == [e.path for e in files[6:]]
    assert len(got_b.busy) == 6 and got_b.elsewhere == 0
    a.finish_claims([e.path for e in files[:3]], "A")  # e.g. unreadable files, or written ones
    again = b.claim(got_b.busy, "B", since=got_a.now)
    assert again.elsewhere == 3 and len(again.busy) == 3 and not again.mine
    assert [e.path for e in a.claim(files[:6], "A").mine] == [e.path for e in files[:6]]  # its own: still its own


def test_written_files_are_left_to_their_writer(make_store) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    store.set_model_info("m", "v1", 4)
    e = entries(2)
    store.write(upserts=[ImageRecord(path=e[0].path, size=e[0].size, mtime=e[0].mtime, sha="ab" * 32, width=1,
                                     height=1, embedding=np.array([1, 0, 0, 0], np.float32))])
    got = store.claim(e, "B")
    assert got.elsewhere == 1 and [x.path for x in got.mine] == [e[1].path]


def test_a_lease_that_runs_out_is_taken_over(make_store) -> None:  # type: ignore[no-untyped-def]
    a, b = make_store(), make_store()
    files = entries(4)
    a.claim(files, "A", lease_s=0.5)  # then A is killed: it renews nothing
    assert len(b.claim(files, "B").busy) == 4
    time.sleep(0.8)
    got = b.claim(files, "B")
    assert [e.path for e in got.mine] == [e.path for e in files] and not got.busy
    b.release_claims("B")  # an interrupted run gives its open claims back at once
    assert len(a.claim(files, "C").mine) == 4


def test_a_finished_claim_from_an_earlier_run_is_tried_again(make_store) -> None:  # type: ignore[no-untyped-def]
    store = make_store()
    files = entries(2, start=50)
    store.claim(files, "A")
    store.finish_claims([files[0].path], "A")  # unreadable in A's run
    time.sleep(0.05)
    later = store.claim(files, "B", since=time.time())  # a rerun that began after: it retries the file
    assert files[0] in later.mine


def test_a_dead_process_on_this_host_is_taken_over_at_once(make_store) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from lookalike.stores.claims import owner_gone, this_host

    host = this_host()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # exited and reaped: its pid names no process now
    dead = f"{host}:{child.pid}:0badc0de"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = f"{host}:{alive.pid}:00c0ffee"
        assert owner_gone(dead) and not owner_gone(live)
        assert not owner_gone(f"another-host-{host}:{child.pid}:0badc0de")  # other machines: only the lease
        assert not owner_gone("A")  # not host:pid:token: only the lease
        a, b = make_store(), make_store()
        files = entries(6, start=100)
        a.claim(files[:2], dead, lease_s=600)  # killed long before its lease would run out
        a.claim(files[2:4], live, lease_s=600)  # still running
        a.claim(files[4:], f"another-host-{host}:{child.pid}:0badc0de", lease_s=600)
        got = b.claim(files, "B")
        assert [e.path for e in got.mine] == [e.path for e in files[:2]]
        assert [e.path for e in got.busy] == [e.path for e in files[2:]]
    finally:
        alive.kill()
        alive.wait()


def test_a_claim_on_postgres_does_not_lock_the_claims_another_owner_holds(pg_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """While B claims a batch that overlaps A's claims (inside B's transaction), A can still renew its own
    claims without waiting: B locked every row of its batch, A's too, so two indexers' renewals waited for
    each other (PostgreSQL reported deadlocks in 5 of 6 runs of two indexers on overlapping folders)."""
    import psycopg

    from lookalike.stores import claims
    from lookalike.stores.postgres import PostgresStore

    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    files = entries(8, start=200)
    assert len(a.claim(files[:5], "A").mine) == 5
    renewals: list[str] = []
    real_decide = claims.decide

    def decide_then_renew_as_a(*args, **kwargs):  # type: ignore[no-untyped-def]
        got = real_decide(*args, **kwargs)  # inside B's claim transaction, after (or between) its row locks
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '2s'")
            try:  # A's renewal, as claim and finish_claims run it
                conn.execute("UPDATE lookalike.claims SET expires = expires + 1 WHERE owner = 'A' AND NOT done")
                renewals.append("renewed")
            except psycopg.errors.LockNotAvailable:
                renewals.append("waited for B")
        return got

    monkeypatch.setattr(claims, "decide", decide_then_renew_as_a)
    got = b.claim(files, "B")
    assert [e.path for e in got.mine] == [e.path for e in files[5:]] and len(got.busy) == 5
    assert renewals and set(renewals) == {"renewed"}, renewals
    a.close()
    b.close()


def test_index_rehash_on_either_store(make_store, model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``index --rehash`` reads the files whose stat is as recorded without claiming them (another indexer leaves
    them alone): on both stores, a file rewritten in place is embedded again and the rest count as unchanged."""
    import io
    import os

    from PIL import Image

    from lookalike.library import Library
    from lookalike.samples import copy_samples

    folder = tmp_path / "photos"
    copy_samples(folder, ["chelsea", "coffee"])
    lib = Library(tmp_path / "lib", store=make_store(), model=model)
    lib.index([folder])
    target = folder / "coffee.jpg"
    st = os.stat(target)
    with Image.open(folder / "chelsea.jpg") as im:
        other = io.BytesIO()
        im.save(other, "JPEG", quality=90)
    with open(target, "r+b") as fh:  # other bytes, the same size, inode and mtime
        fh.write(other.getvalue()[: st.st_size].ljust(st.st_size, b"\0"))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    before = lib.store.file_states()[str(target)]
    s = lib.index([folder], rehash=True)
    assert (s.indexed, s.unchanged, s.elsewhere) == (1, 1, 0), s.as_dict()
    after = lib.store.file_states()[str(target)]
    assert after.id == before.id and after.sha != before.sha
    assert lib.index([folder], rehash=True).unchanged == 2
