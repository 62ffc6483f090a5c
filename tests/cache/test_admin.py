"""Cache management (cache/admin.py): list, clear, garbage-collect and verify, on real runs,
real blobs and real file times."""

import datetime
import json
import os
import time
from pathlib import Path

import pytest

import sterna
from sterna import Directory, task, workflow
from sterna.cache import admin
from sterna.cache.index import rows
from sterna.cache.store import Store
from sterna.core import config
from sterna.core.journal import journal_for

DAY = 86400.0
CALLS: list[str] = []


@task(cache=True)
def words(n: int) -> str:
    CALLS.append("words")
    return " ".join(f"word{i}" for i in range(n))


@task(cache=True)
def shout(text: str) -> str:
    CALLS.append("shout")
    return text.upper()


@task(cache=True)
def length(text: str) -> int:
    CALLS.append("length")
    return len(text)


@workflow
def pipeline(n: int) -> int:
    return length(text=shout(text=words(n=n)))


@task(cache=True)
def padding(n: int) -> str:
    return "p" * n


@task(cache=True)
def twin_a(n: int) -> str:
    return f"twin value {n}" * 50


@task(cache=True)
def twin_b(n: int) -> str:
    return f"twin value {n}" * 50


@workflow
def twins(n: int) -> tuple[str, str]:
    return twin_a(n=n), twin_b(n=n)


@task(cache=True)
def make_dir(root: str, n: int) -> Directory:
    folder = Path(root) / f"made{n}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"part{i}.txt").write_text(f"part {i} of {n}\n" * 40)
    return Directory(folder)


@task(cache=True)
def count_files(d: Directory) -> int:
    return len(os.listdir(d.path))


@workflow
def dir_flow(root: str, n: int) -> int:
    return count_files(d=make_dir(root=root, n=n))


@pytest.fixture
def store() -> Store:
    return Store.at(config.current().home)


def entry_rows(store: Store) -> dict[str, dict[str, object]]:
    with store.session() as con:
        return {str(r["task"]): r for r in rows(con, "SELECT * FROM cache_entries")}


def admin_rows(store: Store) -> list[dict[str, object]]:
    with store.session() as con:
        return rows(con, "SELECT * FROM cache_entries")


def blob_of(store: Store, task_name: str) -> str:
    outputs = json.loads(str(entry_rows(store)[task_name]["outputs"]))
    return str(outputs["o0"]["blob"])


def listing_blobs(store: Store, listing: str) -> list[str]:
    return list(json.loads(store.blobs.read_bytes(listing)).values())


def age_entry(store: Store, task_name: str, days: float) -> None:
    """Make a task's entries look unused (and made) ``days`` ago."""
    when = datetime.datetime.now() - datetime.timedelta(days=days)
    with store.session() as con:
        con.execute("UPDATE cache_entries SET last_used = ?, created_at = ? WHERE task = ?",
                    [when, when, task_name])


def age_blob(store: Store, digest: str, seconds: float) -> None:
    """Set a blob file's modification time ``seconds`` into the past."""
    when = time.time() - seconds
    os.utime(store.blobs.path(digest), (when, when))


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def listing(store: Store) -> dict[str, dict[str, object]]:
    return {str(r["task"]): r for r in admin.cache_list(store)}


# -- cache ls ----------------------------------------------------------------------------------
def test_cache_list_reports_entries_size_last_use_and_hits(store: Store) -> None:
    sterna.run(pipeline, n=30)
    fresh = listing(store)
    assert set(fresh) == {words.name, shout.name, length.name}
    assert all(r["entries"] == 1 and r["hits"] == 0 for r in fresh.values())
    stored = entry_rows(store)
    for name, row in fresh.items():
        outputs = json.loads(str(stored[name]["outputs"]))
        assert row["size"] == sum(o["size"] for o in outputs.values()) > 0
    sterna.run(pipeline, n=30)
    sterna.run(pipeline, n=30)
    after = listing(store)
    assert all(r["hits"] == 2 for r in after.values())
    assert all(after[n]["last_used"] > fresh[n]["last_used"] for n in after)
    sterna.run(pipeline, n=31)
    grown = listing(store)
    assert grown[words.name]["entries"] == 2
    assert grown[words.name]["hits"] == 2
    assert grown[words.name]["size"] > after[words.name]["size"]


def test_a_journal_file_ingested_twice_does_not_count_hits_twice(store: Store) -> None:
    sterna.run(pipeline, n=12)
    with store.session():
        pass
    sterna.run(pipeline, n=12)  # all hits, queued in the journal
    path = journal_for(config.current().home).write()
    assert path is not None
    saved = path.read_text()
    with store.session():
        pass
    assert {r["hits"] for r in listing(store).values()} == {1}
    # a crash between the session's commit and the file's deletion leaves the file behind
    path.write_text(saved)
    with store.session():
        pass
    assert not path.exists()
    assert {r["hits"] for r in listing(store).values()} == {1}


# -- cache clear -------------------------------------------------------------------------------
def test_clear_one_task_drops_its_entries_and_only_its_blobs(store: Store) -> None:
    sterna.run(pipeline, n=20)
    sterna.run(pipeline, n=21)
    sterna.run(twins, n=3)
    shout_blobs = {str(json.loads(str(r["outputs"]))["o0"]["blob"])
                   for r in admin_rows(store) if r["task"] == shout.name}
    twin_blob = blob_of(store, twin_a.name)
    assert twin_blob == blob_of(store, twin_b.name)  # same bytes, one blob
    others = set(store.blobs.iter_digests()) - shout_blobs

    report = admin.cache_clear(store, shout.name)
    assert report.entries_removed == 2
    assert report.blobs_removed == 2
    assert report.bytes_freed > 0
    assert shout.name not in listing(store)
    assert set(listing(store)) == {words.name, length.name, twin_a.name, twin_b.name}
    assert set(store.blobs.iter_digests()) == others

    report = admin.cache_clear(store, twin_a.name)
    assert report.entries_removed == 1
    assert report.blobs_removed == 0  # twin_b's entry still needs the blob
    assert store.blobs.exists(twin_blob)


def test_clear_everything(store: Store) -> None:
    sterna.run(pipeline, n=5)
    sterna.run(twins, n=5)
    blobs = len(list(store.blobs.iter_digests()))
    report = admin.cache_clear(store)
    assert report.entries_removed == 5
    assert report.blobs_removed == blobs
    assert admin.cache_list(store) == []
    assert list(store.blobs.iter_digests()) == []
    CALLS.clear()
    assert sterna.run(pipeline, n=5).outputs == len(" ".join(f"word{i}" for i in range(5)))
    assert CALLS == ["words", "shout", "length"]


def test_clear_a_directory_output_removes_its_files_blobs(tmp_path: Path, store: Store) -> None:
    sterna.run(dir_flow, root=str(tmp_path / "work"), n=3)
    listing_blob = blob_of(store, make_dir.name)
    parts = listing_blobs(store, listing_blob)
    assert len(parts) == 3
    report = admin.cache_clear(store, make_dir.name)
    assert report.entries_removed == 1
    assert report.blobs_removed == 4
    assert not any(store.blobs.exists(b) for b in [listing_blob, *parts])
    assert store.blobs.exists(blob_of(store, count_files.name))


# -- cache gc ----------------------------------------------------------------------------------
def test_gc_age_eviction_and_the_grace_period_for_orphans(store: Store) -> None:
    sterna.run(pipeline, n=40)
    old_blob = blob_of(store, words.name)
    age_entry(store, words.name, days=40)
    young_orphan = store.blobs.put_bytes(b"written by a run that has not committed yet").digest
    old_orphan = store.blobs.put_bytes(b"left behind by a crash long ago").digest
    age_blob(store, old_orphan, admin.GRACE_S + 60)

    report = admin.cache_gc(store, older_than=datetime.timedelta(days=30))
    assert report.entries_removed == 1
    assert set(listing(store)) == {shout.name, length.name}
    assert report.blobs_removed == 1
    assert not store.blobs.exists(old_orphan)
    assert store.blobs.exists(young_orphan)  # younger than admin.GRACE_S
    assert store.blobs.exists(old_blob)  # unreferenced now, but young

    age_blob(store, old_blob, admin.GRACE_S + 60)
    age_blob(store, young_orphan, admin.GRACE_S + 60)
    report = admin.cache_gc(store, older_than=datetime.timedelta(days=30))
    assert report.entries_removed == 0
    assert report.blobs_removed == 2
    assert not store.blobs.exists(old_blob) and not store.blobs.exists(young_orphan)
    assert store.blobs.exists(blob_of(store, shout.name))
    with store.session() as con:
        assert con.execute("SELECT count(*) FROM blobs WHERE blob = ?",
                           [old_blob]).fetchone()[0] == 0


def test_gc_evicts_least_recently_used_entries_down_to_the_size(store: Store) -> None:
    for n in (1000, 2000, 3000):
        sterna.run(padding, n=n)
    stored = sorted(admin_rows(store), key=lambda r: int(str(r["size"])))
    assert len(stored) == 3
    by_n = dict(zip((1000, 2000, 3000), stored))  # a longer string, a bigger blob
    with store.session() as con:
        for hours, n in ((1, 1000), (2, 2000), (3, 3000)):  # the biggest is the oldest
            when = datetime.datetime.now() - datetime.timedelta(hours=hours)
            con.execute("UPDATE cache_entries SET last_used = ? WHERE cache_key = ?",
                        [when, by_n[n]["cache_key"]])
    limit = int(str(by_n[1000]["size"])) + int(str(by_n[2000]["size"]))
    report = admin.cache_gc(store, max_size=limit)
    assert report.entries_removed == 1
    kept = {r["cache_key"] for r in admin_rows(store)}
    assert kept == {by_n[1000]["cache_key"], by_n[2000]["cache_key"]}
    assert sum(int(str(r["size"])) for r in admin_rows(store)) <= limit
    evicted = json.loads(str(by_n[3000]["outputs"]))["o0"]["blob"]
    assert store.blobs.exists(evicted)  # young: kept for the grace period
    age_blob(store, evicted, admin.GRACE_S + 1)
    assert admin.cache_gc(store, max_size=limit).blobs_removed == 1
    assert not store.blobs.exists(evicted)


def test_gc_counts_a_shared_blob_once_against_the_size(store: Store) -> None:
    sterna.run(twins, n=4)
    shared = blob_of(store, twin_a.name)
    on_disk = store.blobs.path(shared).stat().st_size
    assert len(list(store.blobs.iter_digests())) == 1  # both entries use one blob
    # the cache occupies one blob's bytes, under the limit: nothing to evict
    report = admin.cache_gc(store, max_size=on_disk + 10)
    assert report.entries_removed == 0
    assert set(listing(store)) == {twin_a.name, twin_b.name}


def test_gc_never_deletes_a_blob_a_kept_entry_references(tmp_path: Path, store: Store) -> None:
    sterna.run(pipeline, n=8)
    sterna.run(twins, n=8)
    sterna.run(dir_flow, root=str(tmp_path / "work"), n=2)
    everything = set(store.blobs.iter_digests())
    for digest in everything:
        age_blob(store, digest, 400 * DAY)
    age_entry(store, twin_a.name, days=400)  # its blob is twin_b's too

    report = admin.cache_gc(store, older_than=datetime.timedelta(days=30), max_size=10**10)
    assert report.entries_removed == 1
    assert report.blobs_removed == 0
    assert set(store.blobs.iter_digests()) == everything
    parts = listing_blobs(store, blob_of(store, make_dir.name))
    assert len(parts) == 2 and all(store.blobs.exists(p) for p in parts)
    CALLS.clear()
    assert sterna.run(pipeline, n=8).outputs > 0
    assert CALLS == []


def test_gc_with_generous_limits_removes_nothing(store: Store) -> None:
    sterna.run(pipeline, n=3)
    before = set(store.blobs.iter_digests())
    report = admin.cache_gc(store, max_size=10 * 10**9, older_than=datetime.timedelta(days=30))
    assert (report.entries_removed, report.blobs_removed, report.bytes_freed) == (0, 0, 0)
    assert set(store.blobs.iter_digests()) == before
    assert len(admin.cache_list(store)) == 3


# -- cache verify ------------------------------------------------------------------------------
def test_verify_of_a_sound_store_finds_nothing(store: Store) -> None:
    sterna.run(pipeline, n=9)
    report = admin.cache_verify(store)
    assert report.blobs_checked == len(list(store.blobs.iter_digests())) == 3
    assert report.bad == [] and report.entries_removed == 0
    assert len(admin.cache_list(store)) == 3


def test_verify_quarantines_a_flipped_blob_and_the_next_run_recomputes(store: Store) -> None:
    first = sterna.run(pipeline, n=50)
    bad = blob_of(store, shout.name)
    flip_byte(store.blobs.path(bad))

    report = admin.cache_verify(store)
    assert report.bad == [bad]
    assert report.blobs_checked == 3
    assert report.entries_removed == 1
    assert not store.blobs.exists(bad)
    quarantined = list((store.home / "quarantine").glob(f"{bad}.*"))
    assert any(not p.name.endswith(".reason") for p in quarantined)
    assert set(listing(store)) == {words.name, length.name}

    CALLS.clear()
    again = sterna.run(pipeline, n=50)
    assert again.outputs == first.outputs
    assert CALLS == ["shout"]
    status = {n: r.cache_status for n, r in again.nodes.items()}
    assert status == {"words": "hit", "shout": "miss", "length": "hit"}
    assert store.blobs.verify(bad)  # the recomputed value is stored again, intact
    assert admin.cache_verify(store).bad == []


def test_verify_drops_a_directory_entry_whose_file_blob_is_bad(
        tmp_path: Path, store: Store) -> None:
    sterna.run(dir_flow, root=str(tmp_path / "work"), n=3)
    part = listing_blobs(store, blob_of(store, make_dir.name))[1]
    flip_byte(store.blobs.path(part))
    report = admin.cache_verify(store)
    assert report.bad == [part]
    assert report.entries_removed == 1
    assert make_dir.name not in listing(store)
    assert count_files.name in listing(store)
