"""Tests for the content-addressed blob store (cache/blobs.py).

Everything here uses real files, real pyarrow tables and real OS errors: disk
full comes from a 1 MiB tmpfs (when this machine lets us mount one) and from
RLIMIT_FSIZE in a subprocess (EFBIG, works everywhere); the durability order
(fsync, rename, fsync of the directory) is observed with strace and with
Python audit hooks in child processes, never by patching the store.
"""

import errno
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import xxhash
from mapping_support import assert_table_maps_file

from sterna.cache.blobs import BlobError, BlobStore, CorruptBlobError, StoredBlob
from sterna.cache.fingerprint import digest_bytes, digest_file
from sterna.core.errors import SternaError

MIB = 1 << 20


def _table(rows: int, offset: int = 0) -> pa.Table:
    """A two-column int64/float64 table whose content depends on ``offset``."""
    ints = pa.array(range(offset, offset + rows), pa.int64())
    floats = pc.multiply(ints.cast(pa.float64()), 0.5)
    return pa.table({"i": ints, "f": floats})


def _run_child(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a fresh interpreter (limits and hooks stay out of pytest)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def _flip_middle_byte(path: Path) -> None:
    """Corrupt a file in place the way a bad disk or a stray write would: one byte."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


# -- layout and addressing -----------------------------------------------------------


def test_errors_sit_under_the_sterna_root() -> None:
    assert issubclass(BlobError, SternaError)
    assert issubclass(CorruptBlobError, BlobError)


def test_put_bytes_stores_under_objects_prefix_digest(store: BlobStore) -> None:
    data = b"hello blobs" * 1000
    blob = store.put_bytes(data)
    expected = xxhash.xxh3_128_hexdigest(data)
    assert blob == StoredBlob(digest=expected, size=len(data))
    assert blob.digest == digest_bytes(data)
    final = store.root / "objects" / expected[:2] / expected
    assert store.path(expected) == final
    assert final.read_bytes() == data
    assert store.exists(expected)
    assert store.read_bytes(expected) == data


def test_reads_never_create_the_store(tmp_path: Path) -> None:
    root = tmp_path / "absent"
    store = BlobStore(root)
    digest = digest_bytes(b"x")
    assert not store.exists(digest)
    assert not store.verify(digest)
    assert list(store.iter_digests()) == []
    assert store.sweep_tmp(0) == 0
    assert store.delete(digest) == 0
    assert store.quarantine(digest, "test") is None
    with pytest.raises(CorruptBlobError):
        store.read_bytes(digest)
    with pytest.raises(CorruptBlobError):
        store.open_table(digest)
    assert not root.exists()


def test_first_write_lays_out_objects_tmp_and_quarantine(store: BlobStore) -> None:
    store.put_bytes(b"first")
    assert sorted(p.name for p in store.root.iterdir()) == ["objects", "quarantine", "tmp"]
    assert list((store.root / "tmp").iterdir()) == []


@pytest.mark.parametrize(
    "bad", ["", "abc", "../../../../etc/passwd", "A" * 32, "g" * 32, "0" * 31, "0" * 33],
)
def test_malformed_digest_is_rejected(store: BlobStore, bad: str) -> None:
    with pytest.raises(ValueError, match="not a blob digest"):
        store.path(bad)
    with pytest.raises(ValueError, match="not a blob digest"):
        store.read_bytes(bad)


def test_put_bytes_accepts_memoryviews_of_any_format(store: BlobStore) -> None:
    import array

    numbers = array.array("q", range(1000))
    blob = store.put_bytes(memoryview(numbers))
    assert blob.size == 8000
    assert store.read_bytes(blob.digest) == numbers.tobytes()
    strided = memoryview(b"abcdefgh")[::2]
    assert store.read_bytes(store.put_bytes(strided).digest) == b"aceg"


def test_empty_blob_round_trips(store: BlobStore) -> None:
    blob = store.put_bytes(b"")
    assert blob.size == 0
    assert store.read_bytes(blob.digest) == b""
    assert store.verify(blob.digest)


# -- dedup -----------------------------------------------------------------------------


def test_same_bytes_twice_do_not_rewrite_the_blob(store: BlobStore) -> None:
    first = store.put_bytes(b"same" * 5000)
    before = os.stat(store.path(first.digest))
    time.sleep(0.01)
    second = store.put_bytes(b"same" * 5000)
    after = os.stat(store.path(first.digest))
    assert second == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list(store.iter_digests()) == [first.digest]
    assert list((store.root / "tmp").iterdir()) == []


def test_same_table_and_file_twice_keep_the_first_file(store: BlobStore, tmp_path: Path) -> None:
    table = _table(10_000)
    first = store.put_table(table)
    inode = os.stat(store.path(first.digest)).st_ino
    assert store.put_table(table) == first
    assert os.stat(store.path(first.digest)).st_ino == inode

    source = tmp_path / "source.arrow"
    shutil.copyfile(store.path(first.digest), source)
    assert store.put_file(source) == first
    assert os.stat(store.path(first.digest)).st_ino == inode
    assert list((store.root / "tmp").iterdir()) == []


def test_a_torn_file_of_the_wrong_size_is_replaced(store: BlobStore) -> None:
    data = os.urandom(100_000)
    digest = digest_bytes(data)
    final = store.path(digest)
    final.parent.mkdir(parents=True)
    final.write_bytes(data[:1234])  # what a crash mid-write straight to the final path leaves
    assert store.put_bytes(data) == StoredBlob(digest, len(data))
    assert store.read_bytes(digest) == data


# -- files and tables ------------------------------------------------------------------


def test_put_file_copies_content_larger_than_one_chunk(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(9 * MIB + 12345))
    blob = store.put_file(source)
    assert blob == StoredBlob(digest_file(source), source.stat().st_size)
    assert store.read_bytes(blob.digest) == source.read_bytes()


def test_put_file_of_a_missing_source_names_it(store: BlobStore, tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(BlobError, match=r"nope\.csv.*ENOENT") as info:
        store.put_file(missing)
    assert info.value.errno == errno.ENOENT
    assert not store.root.exists()  # failed before any temp file was made


def test_put_table_writes_an_arrow_ipc_file_addressed_by_its_bytes(store: BlobStore) -> None:
    table = _table(50_000)
    blob = store.put_table(table)
    raw = store.path(blob.digest).read_bytes()
    assert raw[:6] == b"ARROW1" and raw[-6:] == b"ARROW1"  # the IPC file format, not a stream
    assert blob == StoredBlob(digest_bytes(raw), len(raw))
    assert pa.ipc.open_file(pa.py_buffer(raw)).read_all().equals(table)
    loaded = store.open_table(blob.digest)
    assert loaded.equals(table)
    assert loaded.schema == table.schema


def test_open_table_is_memory_mapped_not_copied(store: BlobStore) -> None:
    table = _table(1_000_000)
    blob = store.put_table(table)
    before = pa.total_allocated_bytes()
    loaded = store.open_table(blob.digest, verify=True)
    grown = pa.total_allocated_bytes() - before
    assert loaded.num_rows == 1_000_000
    assert grown < table.nbytes // 10, f"open_table allocated {grown} bytes"
    assert loaded.column("i")[999_999].as_py() == 999_999


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc/self/maps")
def test_open_table_buffers_live_in_the_mapped_blob_file(store: BlobStore) -> None:
    """Every column buffer points into a mapping of the blob file itself, not into a copy."""
    table = _table(100_000)
    blob = store.put_table(table)
    loaded = store.open_table(blob.digest)
    assert_table_maps_file(loaded, store.path(blob.digest))


def test_distinct_tables_get_distinct_blobs(store: BlobStore) -> None:
    digests = {store.put_table(_table(1000, offset=k)).digest for k in range(5)}
    assert len(digests) == 5
    assert sorted(store.iter_digests()) == sorted(digests)


# -- corruption --------------------------------------------------------------------------


def test_flipped_byte_in_a_table_is_caught_only_by_the_hash(store: BlobStore) -> None:
    table = _table(200_000)
    blob = store.put_table(table)
    _flip_middle_byte(store.path(blob.digest))
    with pytest.raises(CorruptBlobError, match=f"blob {blob.digest} is corrupt") as info:
        store.open_table(blob.digest)
    assert info.value.digest == blob.digest
    assert str(store.path(blob.digest)) in str(info.value)
    silently_wrong = store.open_table(blob.digest, verify=False)  # Arrow does not notice
    assert silently_wrong.num_rows == table.num_rows
    assert not silently_wrong.equals(table)
    assert not store.verify(blob.digest)


def test_flipped_byte_in_bytes_blob_raises_unless_unverified(store: BlobStore) -> None:
    data = os.urandom(4096)
    blob = store.put_bytes(data)
    _flip_middle_byte(store.path(blob.digest))
    with pytest.raises(CorruptBlobError, match="corrupt"):
        store.read_bytes(blob.digest)
    unverified = store.read_bytes(blob.digest, verify=False)
    assert unverified != data and len(unverified) == len(data)


def test_truncated_blob_is_corrupt(store: BlobStore) -> None:
    blob = store.put_table(_table(100_000))
    path = store.path(blob.digest)
    os.truncate(path, blob.size // 2)
    with pytest.raises(CorruptBlobError, match="corrupt"):
        store.read_bytes(blob.digest)
    with pytest.raises(CorruptBlobError, match="corrupt"):
        store.open_table(blob.digest)
    with pytest.raises(CorruptBlobError, match="not a readable Arrow IPC file"):
        store.open_table(blob.digest, verify=False)
    assert not store.verify(blob.digest)


def test_deleted_blob_is_missing(store: BlobStore) -> None:
    blob = store.put_table(_table(100))
    os.unlink(store.path(blob.digest))
    with pytest.raises(CorruptBlobError, match=f"blob {blob.digest} is missing"):
        store.read_bytes(blob.digest)
    with pytest.raises(CorruptBlobError, match="missing"):
        store.open_table(blob.digest, verify=False)
    assert not store.exists(blob.digest)
    assert not store.verify(blob.digest)


def test_verify_is_true_for_intact_blobs(store: BlobStore) -> None:
    assert store.verify(store.put_bytes(os.urandom(3 * MIB)).digest)
    assert store.verify(store.put_table(_table(1000)).digest)


def test_quarantine_moves_the_blob_aside_with_its_reason(store: BlobStore) -> None:
    data = os.urandom(10_000)
    blob = store.put_bytes(data)
    _flip_middle_byte(store.path(blob.digest))
    moved = store.quarantine(blob.digest, "hash mismatch on read")
    assert moved is not None
    assert moved.parent == store.root / "quarantine"
    assert moved.name.startswith(f"{blob.digest}.")
    assert not store.exists(blob.digest)
    assert blob.digest not in list(store.iter_digests())
    assert len(moved.read_bytes()) == len(data)  # the bad bytes are kept for inspection
    reason = Path(f"{moved}.reason").read_text(encoding="utf-8")
    assert "hash mismatch on read" in reason
    assert store.quarantine(blob.digest, "again") is None
    assert store.put_bytes(data) == blob  # recompute and store again
    assert store.read_bytes(blob.digest) == data


def test_quarantining_twice_keeps_both_copies(store: BlobStore) -> None:
    blob = store.put_bytes(b"twice")
    first = store.quarantine(blob.digest, "one")
    store.put_bytes(b"twice")
    second = store.quarantine(blob.digest, "two")
    assert first is not None and second is not None and first != second
    assert first.exists() and second.exists()


# -- maintenance --------------------------------------------------------------------------


def test_delete_returns_the_bytes_freed(store: BlobStore) -> None:
    blob = store.put_bytes(b"z" * 777)
    assert store.delete(blob.digest) == 777
    assert not store.exists(blob.digest)
    assert store.delete(blob.digest) == 0


def test_iter_digests_lists_blobs_and_ignores_strays(store: BlobStore) -> None:
    blobs = {store.put_bytes(f"blob {k}".encode()).digest for k in range(20)}
    (store.root / "objects" / "zz").mkdir()
    (store.root / "objects" / "README").write_text("not a blob")
    some = next(iter(blobs))
    (store.root / "objects" / some[:2] / "notes.txt").write_text("not a blob")
    wrong_prefix = ("00" if some[:2] != "00" else "11") + some[2:]
    (store.root / "objects" / some[:2] / wrong_prefix).write_text("misfiled")
    (store.root / "tmp" / "inflight.tmp").write_bytes(b"partial")
    listed = list(store.iter_digests())
    assert listed == sorted(blobs)


def test_sweep_tmp_removes_only_stale_files(store: BlobStore) -> None:
    blob = store.put_bytes(b"keep me")
    tmp = store.root / "tmp"
    stale = [tmp / f"stale{k}.tmp" for k in range(3)]
    for path in stale:
        path.write_bytes(b"left by a killed writer")
        old = time.time() - 7200
        os.utime(path, (old, old))
    fresh = tmp / "fresh.tmp"
    fresh.write_bytes(b"a live writer")
    assert store.sweep_tmp() == 3
    assert sorted(p.name for p in tmp.iterdir()) == ["fresh.tmp"]
    assert store.sweep_tmp(older_than_s=0) == 1
    assert list(tmp.iterdir()) == []
    assert store.read_bytes(blob.digest) == b"keep me"


# -- write failures -------------------------------------------------------------------------


def test_failed_rename_removes_temp_and_names_digest(store: BlobStore) -> None:
    data = b"cannot land" * 100
    digest = digest_bytes(data)
    store.put_bytes(b"lay out the store")
    prefix_dir = store.root / "objects" / digest[:2]
    if prefix_dir.exists():
        shutil.rmtree(prefix_dir)
    prefix_dir.write_bytes(b"a file where the prefix directory should be")
    with pytest.raises(BlobError, match=f"blob {digest}.*ENOTDIR") as info:
        store.put_bytes(data)
    assert info.value.errno == errno.ENOTDIR
    assert info.value.digest == digest
    assert list((store.root / "tmp").iterdir()) == []
    prefix_dir.unlink()
    assert store.read_bytes(store.put_bytes(data).digest) == data


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_tmp_raises_eacces(store: BlobStore) -> None:
    store.put_bytes(b"lay out the store")
    tmp = store.root / "tmp"
    tmp.chmod(0o500)
    try:
        with pytest.raises(BlobError, match="EACCES") as info:
            store.put_bytes(b"denied")
        assert info.value.errno == errno.EACCES
    finally:
        tmp.chmod(0o700)
    assert store.read_bytes(store.put_bytes(b"allowed").digest) == b"allowed"


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem (tmpfs) to run out of space on; skipped where mount is denied."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mount_point)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_cleans_up_and_store_stays_usable(tiny_fs: Path, tmp_path: Path) -> None:
    store = BlobStore(tiny_fs)
    small = store.put_bytes(b"fits")
    big = os.urandom(2 * MIB)
    with pytest.raises(BlobError, match=f"blob {digest_bytes(big)}.*ENOSPC") as info:
        store.put_bytes(big)
    assert info.value.errno == errno.ENOSPC
    assert list((tiny_fs / "tmp").iterdir()) == []

    with pytest.raises(BlobError, match=r"table blob.*ENOSPC"):
        store.put_table(_table(200_000))
    assert list((tiny_fs / "tmp").iterdir()) == []

    source = tmp_path / "big.bin"
    source.write_bytes(big)
    with pytest.raises(BlobError, match=r"big\.bin.*ENOSPC"):
        store.put_file(source)
    assert list((tiny_fs / "tmp").iterdir()) == []

    assert list(store.iter_digests()) == [small.digest]
    later = store.put_table(_table(1000))  # the space of the failed writes came back
    assert store.open_table(later.digest).equals(_table(1000))
    assert store.read_bytes(small.digest) == b"fits"


def test_existing_blob_is_stored_even_when_the_disk_is_full(tiny_fs: Path) -> None:
    store = BlobStore(tiny_fs)
    blob = store.put_bytes(b"already here" * 100)
    with open(tiny_fs / "filler", "wb", buffering=0) as filler, pytest.raises(OSError):
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()
    assert store.put_bytes(b"already here" * 100) == blob
    with pytest.raises(BlobError, match="ENOSPC"):
        store.put_bytes(os.urandom(256 * 1024))


def test_file_size_limit_efbig_cleans_up_in_every_put(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes write() fail with EFBIG for real; run it in a child process."""
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(2 * MIB))
    script = """
        import json, os, resource, sys
        import pyarrow as pa
        from sterna.cache.blobs import BlobError, BlobStore

        store = BlobStore(sys.argv[1])
        store.put_bytes(b"lay out the store")
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
        table = pa.table({"x": pa.array(range(300_000), pa.int64())})
        calls = {
            "bytes": lambda: store.put_bytes(os.urandom(2 << 20)),
            "file": lambda: store.put_file(sys.argv[2]),
            "table": lambda: store.put_table(table),
        }
        out = {}
        for name, call in calls.items():
            try:
                call()
                out[name] = "stored"
            except BlobError as exc:
                tmp = os.listdir(os.path.join(sys.argv[1], "tmp"))
                out[name] = {"errno": exc.errno, "message": str(exc), "tmp": tmp}
        small = store.put_bytes(b"still usable")
        out["small"] = store.read_bytes(small.digest).decode()
        out["blobs"] = len(list(store.iter_digests()))
        print(json.dumps(out))
    """
    result = _run_child(script, str(tmp_path / "store"), str(source))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for name in ("bytes", "file", "table"):
        assert out[name] != "stored", name
        assert out[name]["errno"] == errno.EFBIG, out[name]
        assert "EFBIG" in out[name]["message"]
        assert out[name]["tmp"] == []
    assert "source.bin" in out["file"]["message"]
    assert out["small"] == "still usable"
    assert out["blobs"] == 2


# -- durability order -------------------------------------------------------------------------

_WRITE_SCRIPT = """
    import sys
    import pyarrow as pa
    from sterna.cache.blobs import BlobStore

    store = BlobStore(sys.argv[1])
    print(store.put_bytes(b"durable bytes" * 1000).digest)
    print(store.put_table(pa.table({"x": pa.array(range(1000), pa.int64())})).digest)
    print(store.put_file(sys.argv[2]).digest)
"""


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_write_order_is_fsync_rename_fsync_dir(tmp_path: Path) -> None:
    """strace shows: temp file written and fsynced, renamed, then its directory fsynced."""
    root = tmp_path / "store"
    source = tmp_path / "source.txt"
    source.write_text("file blob")
    trace = tmp_path / "trace.log"
    result = subprocess.run(
        ["strace", "-f", "-qq", "-o", str(trace),
         "-e", "trace=openat,close,fsync,fdatasync,rename,renameat,renameat2",
         sys.executable, "-c", textwrap.dedent(_WRITE_SCRIPT), str(root), str(source)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if result.returncode != 0 and "ptrace" in result.stderr:
        pytest.skip(f"strace cannot trace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    lines = trace.read_text().splitlines()
    for digest in result.stdout.split():
        final = str(root / "objects" / digest[:2] / digest)
        renames = [n for n, line in enumerate(lines) if f'"{final}"' in line and "rename" in line]
        assert len(renames) == 1, f"{digest} not renamed into place exactly once"
        rename = lines[renames[0]]
        tmp_name = re.search(r'rename\w*\((?:\w+, )?"([^"]+)"', rename)
        assert tmp_name is not None and tmp_name.group(1).startswith(str(root / "tmp"))
        assert tmp_name.group(1).endswith(".tmp")
        opened = [n for n, line in enumerate(lines[: renames[0]])
                  if f'"{tmp_name.group(1)}"' in line and "O_EXCL" in line
                  and re.search(r"= \d+$", line)]
        assert len(opened) == 1
        tmp_fd = re.search(r"= (\d+)$", lines[opened[0]]).group(1)
        closed = next(n for n in range(opened[0], renames[0])
                      if re.search(rf"\bclose\({tmp_fd}\)", lines[n]))
        between = lines[opened[0]:closed]  # fd numbers are reused after close
        assert any(re.search(rf"\bfsync\({tmp_fd}\)", line) for line in between)
        after = lines[renames[0]:]
        dir_open = next(
            n for n, line in enumerate(after)
            if f'"{Path(final).parent}"' in line and "O_DIRECTORY" in line
        )
        dir_fd = re.search(r"= (\d+)$", after[dir_open]).group(1)
        assert any(re.search(rf"\bfsync\({dir_fd}\)", line) for line in after[dir_open:])
        assert not any(f'"{final}"' in line and "O_WRONLY" in line for line in lines)


def test_blobs_reach_their_final_name_only_by_rename(tmp_path: Path) -> None:
    """Audit hooks (in a child) see every open: no blob is ever opened for writing in place."""
    root = tmp_path / "store"
    source = tmp_path / "source.txt"
    source.write_text("file blob")
    hook = """
        import json, sys
        events = []
        def hook(event, args):
            if event == "open" and args[0] is not None:
                events.append(["open", str(args[0]), str(args[1]), args[2]])
            elif event == "os.rename":
                events.append(["rename", str(args[0]), str(args[1])])
        sys.addaudithook(hook)
    """
    script = textwrap.dedent(hook) + textwrap.dedent(_WRITE_SCRIPT) + "print(json.dumps(events))\n"
    result = _run_child(script, str(root), str(source))
    assert result.returncode == 0, result.stderr
    *digests, events_json = result.stdout.split("\n", 3)
    events = json.loads(events_json)
    assert len(digests) == 3
    for digest in digests:
        final = str(root / "objects" / digest[:2] / digest)
        renames = [e for e in events if e[0] == "rename" and e[2] == final]
        assert len(renames) == 1
        assert renames[0][1].startswith(str(root / "tmp")) and renames[0][1].endswith(".tmp")
        assert not [e for e in events if e[0] == "open" and e[1] == final]
        index = events.index(renames[0])
        parent = str(Path(final).parent)
        assert any(e[0] == "open" and e[1] == parent for e in events[index:])


# -- concurrency ---------------------------------------------------------------------------


def test_two_processes_writing_the_same_file_make_one_blob(
    store: BlobStore, tmp_path: Path,
) -> None:
    source = tmp_path / "shared.bin"
    source.write_bytes(os.urandom(24 * MIB))
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=store.put_file, args=(str(source),)) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
    assert [writer.exitcode for writer in writers] == [0, 0]
    assert list(store.iter_digests()) == [digest_file(source)]
    assert store.verify(digest_file(source))
    assert list((store.root / "tmp").iterdir()) == []


def test_readers_never_see_a_partial_blob(store: BlobStore, tmp_path: Path) -> None:
    """A reader polls exists() -> read_bytes(verify) while another process writes big blobs."""
    sources = []
    for k in range(6):
        sources.append(tmp_path / f"source{k}.bin")
        sources[-1].write_bytes(os.urandom(6 * MIB))
    pending = {digest_file(source): source.read_bytes() for source in sources}
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        writes = pool.map_async(store.put_file, [str(s) for s in sources], chunksize=1)
        while pending:
            done = writes.ready()  # checked before polling, so a last pass sees every blob
            for digest in [d for d in pending if store.exists(d)]:
                assert store.read_bytes(digest, verify=True) == pending.pop(digest)
            if done:
                break
            time.sleep(0.001)
        written = writes.get(timeout=60)
    assert not pending
    assert {blob.digest for blob in written} == {digest_file(s) for s in sources}


def test_kill_9_mid_write_leaves_only_whole_blobs(tmp_path: Path) -> None:
    root = tmp_path / "store"
    script = """
        import os, sys
        from sterna.cache.blobs import BlobStore
        store = BlobStore(sys.argv[1])
        while True:
            store.put_bytes(os.urandom(int.from_bytes(os.urandom(2), "big") * 64 + 1))
    """
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), str(root)])
    store = BlobStore(root)
    try:
        deadline = time.monotonic() + 30
        while len(list(store.iter_digests())) < 20 and time.monotonic() < deadline:
            assert writer.poll() is None, "the writer died on its own"
            time.sleep(0.02)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    digests = list(store.iter_digests())
    assert len(digests) >= 20
    assert all(store.verify(digest) for digest in digests)
    leftovers = len(list((root / "tmp").iterdir()))
    assert store.sweep_tmp(older_than_s=0) == leftovers
    assert list((root / "tmp").iterdir()) == []
