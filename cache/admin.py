"""Cache management: list, clear, garbage-collect and verify.

The one rule of ``gc``: a blob that a kept entry references is never deleted.
Blobs younger than a grace period are kept too, since a run in another
process may have written them and not yet committed the entry that points at
them (the blob is made durable before its entry).
"""

from __future__ import annotations

import datetime
import json
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from .index import rows
from .store import Store

GRACE_S = 3600.0


@dataclass
class GcReport:
    """What a garbage collection removed."""

    entries_removed: int = 0
    blobs_removed: int = 0
    bytes_freed: int = 0


@dataclass
class VerifyReport:
    """What a verification found."""

    blobs_checked: int = 0
    bad: list[str] = field(default_factory=list)
    entries_removed: int = 0


def cache_list(store: Store) -> list[dict[str, Any]]:
    """Per task: entries, bytes, last use and hits."""
    with store.session() as con:
        return rows(con, "SELECT task, count(*) AS entries, sum(size) AS size, "
                         "max(last_used) AS last_used, sum(hits) AS hits "
                         "FROM cache_entries GROUP BY task ORDER BY task")


def cache_clear(store: Store, task: str | None = None) -> GcReport:
    """Drop the entries of one task (or all), then the blobs nothing references."""
    with store.session() as con:
        where, params = ("WHERE task = ?", [task]) if task else ("", [])
        count = con.execute(f"SELECT count(*) FROM cache_entries {where}", params).fetchone()[0]
        con.execute(f"DELETE FROM cache_entries {where}", params)
    report = collect_blobs(store, grace_s=0.0)
    report.entries_removed = count
    return report


def cache_gc(store: Store, *, max_size: int | None = None,
             older_than: datetime.timedelta | None = None) -> GcReport:
    """Drop entries unused for ``older_than``, then least recently used ones above
    ``max_size`` bytes, then every blob no kept entry references."""
    removed = 0
    with store.session() as con:
        if older_than is not None:
            cutoff = datetime.datetime.now() - older_than
            removed += con.execute("SELECT count(*) FROM cache_entries WHERE "
                                   "coalesce(last_used, created_at) < ?", [cutoff]).fetchone()[0]
            con.execute("DELETE FROM cache_entries WHERE coalesce(last_used, created_at) < ?",
                        [cutoff])
        if max_size is not None:
            removed += _shrink(store, con, max_size)
    report = collect_blobs(store)
    report.entries_removed = removed
    return report


def _shrink(store: Store, con: Any, max_size: int) -> int:
    """Keep the most recently used entries whose blobs (each counted once) fit."""
    entries = con.execute("SELECT cache_key, outputs FROM cache_entries "
                          "ORDER BY coalesce(last_used, created_at) DESC").fetchall()
    total, seen, doomed = 0, set(), []
    for key, outputs in entries:
        blobs = _entry_blobs(store, json.loads(outputs))
        extra = sum(size for blob, size in blobs.items() if blob not in seen)
        if total + extra > max_size:
            doomed.append(key)
            continue
        total += extra
        seen.update(blobs)
    for key in doomed:
        con.execute("DELETE FROM cache_entries WHERE cache_key = ?", [key])
    return len(doomed)


def _entry_blobs(store: Store, outputs: dict[str, Any]) -> dict[str, int]:
    """The blobs one entry needs (directory listings' files included), with sizes."""
    blobs: dict[str, int] = {}
    for out in outputs.values():
        blobs[out["blob"]] = out["size"]
        if out["codec"] == "dir" and store.blobs.exists(out["blob"]):
            listing = json.loads(store.blobs.read_bytes(out["blob"], verify=False))
            for blob in listing.values():
                found = store.blobs.stat(blob)
                blobs[blob] = found[0] if found else 0
    return blobs


def referenced_blobs(store: Store, con: Any) -> set[str]:
    """Every blob a cache entry needs, directory listings' files included."""
    needed: set[str] = set()
    for (outputs,) in con.execute("SELECT outputs FROM cache_entries").fetchall():
        needed.update(_entry_blobs(store, json.loads(outputs)))
    return needed


def collect_blobs(store: Store, *, grace_s: float = GRACE_S) -> GcReport:
    """Delete blobs that no entry references (and are older than the grace period)."""
    report = GcReport()
    with store.session() as con:
        needed = referenced_blobs(store, con)
        now = time.time()
        for digest in list(store.blobs.iter_digests()):
            if digest in needed:
                continue
            found = store.blobs.stat(digest)
            if found is None or now - found[1] < grace_s:
                continue
            report.bytes_freed += store.blobs.delete(digest)
            report.blobs_removed += 1
            con.execute("DELETE FROM blobs WHERE blob = ?", [digest])
            for folder in ("files", "dirs"):
                shutil.rmtree(store.home / folder / digest, ignore_errors=True)
    store.blobs.sweep_tmp()
    return report


def cache_verify(store: Store) -> VerifyReport:
    """Re-hash every blob; quarantine bad ones and drop the entries that used them."""
    report = VerifyReport()
    for digest in list(store.blobs.iter_digests()):
        report.blobs_checked += 1
        if not store.blobs.verify(digest):
            store.blobs.quarantine(digest, "verify: content does not match its digest")
            report.bad.append(digest)
    with store.session() as con:
        for key, outputs in con.execute(
                "SELECT cache_key, outputs FROM cache_entries").fetchall():
            blobs = _entry_blobs(store, json.loads(outputs))
            if any(not store.blobs.exists(b) for b in blobs):
                con.execute("DELETE FROM cache_entries WHERE cache_key = ?", [key])
                report.entries_removed += 1
    return report
