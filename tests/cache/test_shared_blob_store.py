"""The shared blob store on S3 (cache/fsblobs.py), against an S3-compatible server on loopback.

Values of cached tasks go to ``s3://bucket/prefix`` while the DuckDB index stays in the local
``STERNA_HOME``: workers and actors write blobs to the bucket, the driver records the entries.
Every test gets a fresh bucket on one server per module; objects are inspected and damaged
through pyarrow's own S3 filesystem, the way another machine would see them.
"""

import datetime
import json
import logging
import os
import shutil
import socket
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest
import xxhash
from cli_support import assert_user_error
from click.testing import CliRunner
from executor_support import Calls

import sterna
from sterna import Directory, File, SternaError, SternaWarning
from sterna.cache import admin, history
from sterna.cache.blobs import BlobError, CorruptBlobError
from sterna.cache.fsblobs import FsBlobStore
from sterna.cache.index import rows
from sterna.cache.store import Store
from sterna.cli.main import cli
from sterna.core import config

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
               "AWS_EC2_METADATA_DISABLED": "true"}


# -- the server, one bucket per test -----------------------------------------------------------


@pytest.fixture(scope="module")
def s3_port() -> Iterator[int]:
    """An S3-compatible server on 127.0.0.1 (credentials in the environment for the module)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        server.start()
        try:
            yield port
        finally:
            server.stop()
            quiet.setLevel(level)


@dataclass
class Bucket:
    """A fresh bucket: the blob store's URI, a filesystem onto it, and the store's root key."""

    uri: str
    fs: Any
    root: str

    def objects(self) -> dict[str, int]:
        """Base name -> size of every object under ``root/objects``."""
        return self._files(f"{self.root}/objects", recursive=True)

    def files_under(self, folder: str) -> dict[str, int]:
        """Base name -> size of the objects directly under ``root/folder``."""
        return self._files(f"{self.root}/{folder}", recursive=False)

    def _files(self, where: str, *, recursive: bool) -> dict[str, int]:
        selector = pafs.FileSelector(where, recursive=recursive, allow_not_found=True)
        return {info.base_name: int(info.size or 0) for info in self.fs.get_file_info(selector)
                if info.type == pafs.FileType.File}

    def key(self, digest: str) -> str:
        return f"{self.root}/objects/{digest[:2]}/{digest}"

    def read(self, key: str) -> bytes:
        with self.fs.open_input_stream(key) as stream:
            return bytes(stream.read())

    def write(self, key: str, data: bytes) -> None:
        with self.fs.open_output_stream(key) as stream:
            stream.write(data)

    def corrupt(self, digest: str) -> None:
        """Flip one byte of a stored object, in place, through the S3 filesystem."""
        data = bytearray(self.read(self.key(digest)))
        data[len(data) // 2] ^= 0xFF
        self.write(self.key(digest), bytes(data))


@pytest.fixture
def bucket(s3_port: int, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    name = f"sterna-{uuid.uuid4().hex[:16]}"
    fs = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{s3_port}", scheme="http",
                           access_key="x", secret_key="x", region="us-east-1",
                           allow_bucket_creation=True)
    fs.create_dir(name)
    uri = (f"s3://{name}/blobs?endpoint_override=127.0.0.1:{s3_port}&scheme=http"
           f"&region=us-east-1")
    return Bucket(uri, fs, f"{name}/blobs")


@pytest.fixture
def shared(bucket: Bucket) -> Bucket:
    """The bucket, configured as where every run's values go."""
    sterna.configure(blobs=bucket.uri)
    return bucket


# -- a cached pipeline: a table feeding a consumer, and a File feeding a consumer -------------


def build_flow(calls: Calls) -> SimpleNamespace:
    @sterna.task(cache=True)
    def make_table(n: int) -> pa.Table:
        calls.append("make_table")
        return pa.table({"x": list(range(n)), "y": [i * 0.5 for i in range(n)]})

    @sterna.task(cache=True)
    def total(t: pa.Table) -> int:
        calls.append("total")
        return int(pc.sum(t["x"]).as_py())

    @sterna.task(cache=True)
    def write_report(folder: str, n: int) -> File:
        calls.append("write_report")
        path = Path(folder) / "report.txt"
        path.write_text(f"report of {n} rows\n" * 20)
        return File(path)

    @sterna.task(cache=True)
    def read_report(f: File) -> str:
        calls.append("read_report")
        return Path(f.path).read_text().splitlines()[0]

    @sterna.task(cache=True)
    def count_rows(t: pa.Table) -> int:
        calls.append("count_rows")
        return t.num_rows

    @sterna.workflow
    def flow(n: int, folder: str) -> tuple[pa.Table, int, File, str]:
        t = make_table(n=n)
        report = write_report(folder=folder, n=n)
        return t, total(t=t), report, read_report(f=report)

    @sterna.workflow
    def rows_flow(n: int) -> int:
        return count_rows(t=make_table(n=n))

    return SimpleNamespace(flow=flow, rows_flow=rows_flow, make_table=make_table, total=total,
                           write_report=write_report, read_report=read_report,
                           count_rows=count_rows)


NODES = ("make_table", "total", "write_report", "read_report")


def expected_table(n: int) -> pa.Table:
    return pa.table({"x": list(range(n)), "y": [i * 0.5 for i in range(n)]})


def statuses(run: sterna.Run) -> dict[str, str]:
    return {node_id: record.cache_status for node_id, record in run.nodes.items()}


def store() -> Store:
    return Store.at(config.current().home)


def home() -> Path:
    return Path(config.current().home).resolve()


def local_object_files() -> list[Path]:
    return [p for p in (home() / "objects").rglob("*") if p.is_file()]


def entries() -> dict[str, dict[str, Any]]:
    """Every cache entry of the local index, by task name, with its outputs decoded."""
    with store().session() as con:
        found = rows(con, "SELECT task, outputs FROM cache_entries")
    result: dict[str, dict[str, Any]] = {}
    for row in found:
        assert row["task"] not in result, f"two entries for {row['task']}"
        result[str(row["task"])] = json.loads(str(row["outputs"]))
    return result


def blob_of(task: sterna.Task[..., Any], output: str = "o0") -> str:
    return str(entries()[task.name][output]["blob"])


def assert_outputs(outputs: tuple[Any, ...], n: int) -> None:
    table, summed, report, first = outputs
    assert table.equals(expected_table(n))
    assert summed == sum(range(n))
    assert isinstance(report, File)
    assert Path(report.path).read_text() == f"report of {n} rows\n" * 20
    assert first == f"report of {n} rows"


def assert_bucket_holds(bucket: Bucket, blobs: dict[str, int]) -> None:
    """The bucket holds exactly these blobs, with these sizes, each matching its digest."""
    assert bucket.objects() == blobs
    for digest in blobs:
        assert xxhash.xxh3_128_hexdigest(bucket.read(bucket.key(digest))) == digest


# -- every executor: runs miss then hit; blobs live in the bucket, entries in the local index --


@pytest.mark.filterwarnings("error::sterna.core.errors.SternaWarning")  # nothing to report
def test_a_cached_pipeline_keeps_its_blobs_in_the_bucket_and_its_index_local(
        executor: str, shared: Bucket, tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    f = build_flow(calls)
    out = tmp_path / "out"
    out.mkdir()

    first = sterna.run(f.flow, n=50, folder=str(out))
    assert first.status == "succeeded"
    assert statuses(first) == dict.fromkeys(NODES, "miss")
    assert sorted(calls) == sorted(NODES)
    assert_outputs(first.outputs, 50)

    found = entries()
    assert set(found) == {t.name for t in (f.make_table, f.total, f.write_report,
                                           f.read_report)}
    codecs = {task: outputs["o0"]["codec"] for task, outputs in found.items()}
    assert codecs[f.make_table.name] == "arrow"
    assert codecs[f.write_report.name] == "file"
    blobs = {outputs["o0"]["blob"]: outputs["o0"]["size"] for outputs in found.values()}
    assert_bucket_holds(shared, blobs)
    assert local_object_files() == []
    assert (home() / "sterna.duckdb").is_file()

    (out / "report.txt").unlink()  # the hit's File must come back from the bucket
    second = sterna.run(f.flow, n=50, folder=str(out))
    assert statuses(second) == dict.fromkeys(NODES, "hit")
    assert sorted(calls) == sorted(NODES)  # nothing ran again
    assert_outputs(second.outputs, 50)
    assert first.outputs[0].equals(second.outputs[0])
    assert first.outputs[1] == second.outputs[1]
    assert first.outputs[3] == second.outputs[3]
    report = Path(second.outputs[2].path).resolve()
    assert report.is_relative_to(home())
    assert report.name == "report.txt"

    assert local_object_files() == []
    listed = {str(r["task"]): r for r in admin.cache_list(store())}
    assert set(listed) == set(found)
    assert all(r["entries"] == 1 and r["hits"] == 1 for r in listed.values())
    assert_bucket_holds(shared, blobs)

    # a new consumer of the stored table: its input is read back from the bucket
    counted = sterna.run(f.rows_flow, n=50)
    assert statuses(counted) == {"make_table": "hit", "count_rows": "miss"}
    assert counted.outputs == 50
    assert calls.count("make_table") == 1 and calls.count("count_rows") == 1
    count_blob = entries()[f.count_rows.name]["o0"]["blob"]
    assert set(shared.objects()) == set(blobs) | {count_blob}
    assert local_object_files() == []

    recorded = history.runs_list(store())
    assert [r["run_id"] for r in recorded] == [counted.run_id, second.run_id, first.run_id]
    assert {(r["status"], r["executor"]) for r in recorded} == {("succeeded", executor)}


@pytest.mark.executors("process", "ray")
def test_workers_write_the_blobs_and_the_driver_only_records_them(
        executor: str, bucket: Bucket, s3_port: int, tmp_path: Path) -> None:
    """Each cached output is written once, by the worker process or actor that made it.

    Credentials ride in the URI here, so workers started before this test (with another
    environment) reach the bucket too; versioning keeps the deleted temporary objects, whose
    names carry the writer's process id.
    """
    import boto3

    name = bucket.root.split("/", 1)[0]
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}",
                          region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    sterna.configure(blobs=bucket.uri.replace("s3://", "s3://x:x@", 1))
    calls = Calls(tmp_path / "calls.jsonl")
    f = build_flow(calls)
    out = tmp_path / "out"
    out.mkdir()

    first = sterna.run(f.flow, n=30, folder=str(out))
    assert statuses(first) == dict.fromkeys(NODES, "miss")
    assert_outputs(first.outputs, 30)

    versions = client.list_object_versions(Bucket=name, Prefix="blobs/").get("Versions", [])
    keys = [v["Key"] for v in versions if not v["Key"].endswith("/")]
    written = [k.rsplit("/", 1)[1] for k in keys if k.startswith("blobs/objects/")]
    assert sorted(written) == sorted(bucket.objects())  # each object written exactly once
    assert len(written) == len(NODES)
    writers = {int(k.rsplit("/", 1)[1].split("-", 1)[0]) for k in keys
               if k.startswith("blobs/tmp/")}
    assert len(writers) >= 1
    assert os.getpid() not in writers, f"the driver wrote blobs on the {executor} executor"
    assert local_object_files() == []

    second = sterna.run(f.flow, n=30, folder=str(out))
    assert statuses(second) == dict.fromkeys(NODES, "hit")
    after = client.list_object_versions(Bucket=name, Prefix="blobs/objects/").get(
        "Versions", [])
    assert len([v for v in after if not v["Key"].endswith("/")]) == len(NODES)  # no rewrites
    assert_outputs(second.outputs, 30)


# -- FsBlobStore on its own --------------------------------------------------------------------


def test_put_bytes_table_and_file_round_trip(bucket: Bucket, tmp_path: Path) -> None:
    blobs = FsBlobStore(bucket.uri)
    data = b"some bytes \x00\x01\x02" * 100
    stored = blobs.put_bytes(data)
    assert stored.digest == xxhash.xxh3_128_hexdigest(data)
    assert stored.size == len(data)
    assert blobs.read_bytes(stored.digest) == data

    table = pa.table({"a": [1, 2, 3], "b": ["x", "y", None]})
    tabled = blobs.put_table(table)
    assert blobs.open_table(tabled.digest).equals(table)
    found = blobs.stat(tabled.digest)
    assert found is not None and found[0] == tabled.size > 0

    source = tmp_path / "source.bin"
    source.write_bytes(bytes(range(256)) * 64)
    filed = blobs.put_file(source)
    assert filed.digest == xxhash.xxh3_128_hexdigest(source.read_bytes())
    assert filed.size == source.stat().st_size
    target = tmp_path / "copy.bin"
    blobs.download(filed.digest, target)
    assert target.read_bytes() == source.read_bytes()

    assert bucket.objects() == {stored.digest: stored.size, tabled.digest: tabled.size,
                                filed.digest: filed.size}
    assert bucket.files_under("tmp") == {}  # every temporary object was moved into place
    assert all(blobs.exists(d) for d in (stored.digest, tabled.digest, filed.digest))


def test_the_same_bytes_are_stored_once(bucket: Bucket, tmp_path: Path) -> None:
    blobs = FsBlobStore(bucket.uri)
    data = b"duplicate me " * 50
    one = blobs.put_bytes(data)
    two = blobs.put_bytes(memoryview(data))
    source = tmp_path / "same.bin"
    source.write_bytes(data)
    three = blobs.put_file(source)
    assert one == two == three
    assert bucket.objects() == {one.digest: len(data)}
    assert list(blobs.iter_digests()) == [one.digest]
    assert bucket.files_under("tmp") == {}


def test_a_corrupted_object_fails_verification_on_read(bucket: Bucket) -> None:
    blobs = FsBlobStore(bucket.uri)
    table = pa.table({"v": list(range(1000))})
    stored = blobs.put_table(table)
    raw = blobs.put_bytes(b"payload " * 200)
    bucket.corrupt(stored.digest)
    bucket.corrupt(raw.digest)

    with pytest.raises(CorruptBlobError, match="corrupt") as info:
        blobs.read_bytes(raw.digest)
    assert info.value.digest == raw.digest
    assert raw.digest in str(info.value)
    with pytest.raises(CorruptBlobError) as info:
        blobs.open_table(stored.digest)
    assert stored.digest in str(info.value)
    assert isinstance(info.value, SternaError)
    assert not blobs.verify(stored.digest)
    assert not blobs.verify(raw.digest)
    damaged = blobs.read_bytes(raw.digest, verify=False)  # still readable when asked
    assert damaged != b"payload " * 200 and len(damaged) == raw.size


def test_a_missing_object_is_reported_as_corrupt(bucket: Bucket) -> None:
    blobs = FsBlobStore(bucket.uri)
    stored = blobs.put_bytes(b"soon gone")
    bucket.fs.delete_file(bucket.key(stored.digest))
    assert blobs.stat(stored.digest) is None
    assert not blobs.exists(stored.digest)
    with pytest.raises(CorruptBlobError, match="missing") as info:
        blobs.read_bytes(stored.digest)
    assert info.value.digest == stored.digest
    assert stored.digest in str(info.value)
    with pytest.raises(CorruptBlobError):
        blobs.open_table(stored.digest)
    assert not blobs.verify(stored.digest)
    never = "0" * 32
    with pytest.raises(CorruptBlobError, match="missing"):
        blobs.read_bytes(never)


def test_quarantine_moves_the_object_under_the_quarantine_prefix(bucket: Bucket) -> None:
    blobs = FsBlobStore(bucket.uri)
    keep = blobs.put_bytes(b"a good blob")
    bad = blobs.put_bytes(b"a blob that goes bad" * 10)
    bucket.corrupt(bad.digest)
    damaged = bucket.read(bucket.key(bad.digest))

    dest = blobs.quarantine(bad.digest, "verify: content does not match its digest")
    assert dest is not None
    assert dest.startswith(f"{bucket.root}/quarantine/{bad.digest}.")
    assert not blobs.exists(bad.digest)
    assert list(blobs.iter_digests()) == [keep.digest]
    assert bucket.objects() == {keep.digest: keep.size}
    assert bucket.read(dest) == damaged
    assert bucket.read(f"{dest}.reason").decode() == (
        "verify: content does not match its digest\n")
    names = set(bucket.files_under("quarantine"))
    base = dest.rsplit("/", 1)[1]
    assert names == {base, f"{base}.reason"}
    assert blobs.quarantine(bad.digest, "again") is None  # nothing left to move
    again = blobs.put_bytes(b"a blob that goes bad" * 10)  # the value can be stored anew
    assert again == bad
    assert blobs.read_bytes(bad.digest) == b"a blob that goes bad" * 10


def test_iter_digests_lists_exactly_the_stored_digests(bucket: Bucket) -> None:
    blobs = FsBlobStore(bucket.uri)
    assert list(blobs.iter_digests()) == []  # nothing written yet: no objects prefix at all
    digests = {blobs.put_bytes(f"value {i}".encode()).digest for i in range(7)}
    digests.add(blobs.put_table(pa.table({"k": [1, 2]})).digest)
    bucket.write(f"{bucket.root}/objects/ab/not-a-digest", b"stray")
    bucket.write(f"{bucket.root}/tmp/123-abc.tmp", b"half written")
    listed = list(blobs.iter_digests())
    assert listed == sorted(digests)


def test_delete_frees_the_size_of_the_object(bucket: Bucket) -> None:
    blobs = FsBlobStore(bucket.uri)
    gone = blobs.put_bytes(b"x" * 4321)
    kept = blobs.put_bytes(b"y" * 99)
    assert blobs.delete(gone.digest) == 4321
    assert not blobs.exists(gone.digest)
    assert blobs.delete(gone.digest) == 0
    assert bucket.objects() == {kept.digest: 99}
    assert list(blobs.iter_digests()) == [kept.digest]


def test_sweep_tmp_removes_only_stale_temporary_objects(bucket: Bucket) -> None:
    blobs = FsBlobStore(bucket.uri)
    kept = blobs.put_bytes(b"a finished blob")
    for name in ("1-aaaa.tmp", "2-bbbb.tmp"):
        bucket.write(f"{bucket.root}/tmp/{name}", b"left behind by a dead writer")
    assert blobs.sweep_tmp() == 0  # younger than an hour: a writer may still be busy
    assert set(bucket.files_under("tmp")) == {"1-aaaa.tmp", "2-bbbb.tmp"}
    assert blobs.sweep_tmp(older_than_s=0) == 2
    assert bucket.files_under("tmp") == {}
    assert bucket.objects() == {kept.digest: kept.size}
    assert blobs.read_bytes(kept.digest) == b"a finished blob"


# -- a damaged object is found by the next run, quarantined and recomputed -------------------


@pytest.mark.parametrize("damaged", ["make_table", "write_report"])
def test_a_corrupted_output_object_is_quarantined_and_recomputed(
        shared: Bucket, tmp_path: Path, damaged: str) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    f = build_flow(calls)
    out = tmp_path / "out"
    out.mkdir()
    assert_outputs(sterna.run(f.flow, n=40, folder=str(out)).outputs, 40)
    digest = blob_of(getattr(f, damaged))
    good = shared.read(shared.key(digest))
    shared.corrupt(digest)

    with pytest.warns(SternaWarning, match=f"{digest}.*quarantined"):
        again = sterna.run(f.flow, n=40, folder=str(out))
    assert again.status == "succeeded"
    assert_outputs(again.outputs, 40)
    assert calls.count(damaged) == 2
    assert len(calls) == len(NODES) + 1  # only the damaged value was computed again
    assert again.nodes[damaged].cache_status == "miss"

    quarantined = shared.files_under("quarantine")
    moved = [name for name in quarantined if not name.endswith(".reason")]
    assert len(moved) == 1 and moved[0].startswith(f"{digest}.")
    assert f"{moved[0]}.reason" in quarantined
    assert shared.read(shared.key(digest)) == good  # stored again, intact
    assert blob_of(getattr(f, damaged)) == digest
    assert local_object_files() == []

    with warnings.catch_warnings():
        warnings.simplefilter("error", SternaWarning)
        third = sterna.run(f.flow, n=40, folder=str(out))
    assert statuses(third) == dict.fromkeys(NODES, "hit")
    assert len(calls) == len(NODES) + 1
    assert_outputs(third.outputs, 40)


def test_a_deleted_output_object_is_recomputed_and_stored_again(
        shared: Bucket, tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    f = build_flow(calls)
    out = tmp_path / "out"
    out.mkdir()
    sterna.run(f.flow, n=15, folder=str(out))
    digest = blob_of(f.make_table)
    shared.fs.delete_file(shared.key(digest))

    with pytest.warns(SternaWarning, match=f"{digest}.*missing"):
        again = sterna.run(f.flow, n=15, folder=str(out))
    assert_outputs(again.outputs, 15)
    assert calls.count("make_table") == 2
    assert len(calls) == len(NODES) + 1
    assert digest in shared.objects()
    assert FsBlobStore(shared.uri).verify(digest)


def test_a_directory_output_round_trips_through_the_bucket(shared: Bucket, tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")

    @sterna.task(cache=True)
    def build(folder: str, n: int) -> Directory:
        calls.append("build")
        root = Path(folder) / "parts"
        (root / "sub").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / f"part{i}.txt").write_text(f"part {i}\n" * 10)
        (root / "sub" / "deep.txt").write_text("deep")
        return Directory(root)

    @sterna.workflow
    def wf(folder: str, n: int) -> Directory:
        return build(folder=folder, n=n)

    out = tmp_path / "out"
    out.mkdir()
    sterna.run(wf, folder=str(out), n=3)
    assert len(shared.objects()) == 3 + 1 + 1  # three parts, the deep file, the listing
    shutil.rmtree(out / "parts")

    hit = sterna.run(wf, folder=str(out), n=3)
    assert statuses(hit) == {"build": "hit"}
    assert calls == ["build"]
    root = Path(hit.outputs.path)
    assert root.resolve().is_relative_to(home())
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "part0.txt", "part1.txt", "part2.txt", "sub/deep.txt"]
    assert (root / "part2.txt").read_text() == "part 2\n" * 10
    assert (root / "sub" / "deep.txt").read_text() == "deep"
    assert local_object_files() == []
    assert admin.cache_verify(store()).bad == []


# -- cache management on the S3 store ---------------------------------------------------------


def test_cache_verify_quarantines_bad_objects_and_drops_their_entries(
        shared: Bucket, tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    f = build_flow(calls)
    out = tmp_path / "out"
    out.mkdir()
    sterna.run(f.flow, n=30, folder=str(out))
    clean = admin.cache_verify(store())
    assert clean.blobs_checked == len(shared.objects()) == len(NODES)
    assert clean.bad == [] and clean.entries_removed == 0

    digest = blob_of(f.total)
    shared.corrupt(digest)
    report = admin.cache_verify(store())
    assert report.blobs_checked == len(NODES)
    assert report.bad == [digest]
    assert report.entries_removed == 1
    assert f.total.name not in entries()
    assert digest not in shared.objects()
    assert any(name.startswith(f"{digest}.") for name in shared.files_under("quarantine"))

    rerun = sterna.run(f.flow, n=30, folder=str(out))
    assert statuses(rerun) == {**dict.fromkeys(NODES, "hit"), "total": "miss"}
    assert calls.count("total") == 2
    assert_outputs(rerun.outputs, 30)
    assert shared.objects()[digest] > 0


def test_the_cache_verify_command_checks_the_s3_store(
        bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STERNA_BLOBS", bucket.uri)
    calls = Calls(tmp_path / "calls.jsonl")
    f = build_flow(calls)
    out = tmp_path / "out"
    out.mkdir()
    sterna.run(f.flow, n=25, folder=str(out))
    assert local_object_files() == []

    ok = CliRunner().invoke(cli, ["cache", "verify"], prog_name="sterna")
    assert ok.exit_code == 0, ok.output
    assert f"checked {len(NODES)} blobs: 0 bad, 0 entries dropped" in ok.output

    digest = blob_of(f.make_table)
    bucket.corrupt(digest)
    bad = CliRunner().invoke(cli, ["cache", "verify"], prog_name="sterna")
    assert bad.exit_code == 1, bad.output
    assert f"bad blob {digest} (quarantined)" in bad.output
    assert f"checked {len(NODES)} blobs: 1 bad, 1 entries dropped" in bad.output
    assert digest not in bucket.objects()
    assert f.make_table.name not in entries()


def test_cache_gc_and_clear_delete_objects_in_the_bucket(shared: Bucket, tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    f = build_flow(calls)
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    new_dir.mkdir()
    sterna.run(f.flow, n=10, folder=str(old_dir))
    old_blobs = dict(shared.objects())
    sterna.run(f.flow, n=20, folder=str(new_dir))
    new_blobs = {d: s for d, s in shared.objects().items() if d not in old_blobs}
    assert len(old_blobs) == len(new_blobs) == len(NODES)

    with store().session() as con:  # the n=10 entries were last used two days ago
        when = datetime.datetime.now() - datetime.timedelta(days=2)
        old_runs = con.execute("SELECT cache_key, outputs FROM cache_entries").fetchall()
        for key, outputs in old_runs:
            if {o["blob"] for o in json.loads(outputs).values()} <= set(old_blobs):
                con.execute("UPDATE cache_entries SET last_used = ?, created_at = ? "
                            "WHERE cache_key = ?", [when, when, key])

    report = admin.cache_gc(store(), older_than=datetime.timedelta(days=1))
    assert report.entries_removed == len(NODES)
    assert report.blobs_removed == 0  # unreferenced, but younger than the grace period
    assert set(shared.objects()) == set(old_blobs) | set(new_blobs)

    swept = admin.collect_blobs(store(), grace_s=0.0)
    assert swept.blobs_removed == len(NODES)
    assert swept.bytes_freed == sum(old_blobs.values())
    assert shared.objects() == new_blobs

    rerun = sterna.run(f.flow, n=20, folder=str(new_dir))
    assert statuses(rerun) == dict.fromkeys(NODES, "hit")
    assert_outputs(rerun.outputs, 20)

    cleared = admin.cache_clear(store())
    assert cleared.entries_removed == len(NODES)
    assert cleared.blobs_removed == len(NODES)
    assert cleared.bytes_freed == sum(new_blobs.values())
    assert shared.objects() == {}
    assert entries() == {}


# -- a URI that names no filesystem ------------------------------------------------------------


BAD_URI = "nosuch://bucket/prefix"


def test_an_unknown_scheme_is_a_blob_error_naming_the_uri(tmp_path: Path) -> None:
    with pytest.raises(BlobError, match="cannot open blob store") as info:
        FsBlobStore(BAD_URI)
    assert BAD_URI in str(info.value)
    assert isinstance(info.value, SternaError)

    with pytest.raises(BlobError) as info:
        Store(tmp_path / "home", BAD_URI)
    assert BAD_URI in str(info.value)


def test_a_run_with_an_unknown_blob_scheme_fails_with_a_clear_error(tmp_path: Path) -> None:
    calls = Calls(tmp_path / "calls.jsonl")
    f = build_flow(calls)
    sterna.configure(blobs=BAD_URI)
    with pytest.raises(SternaError) as info:
        sterna.run(f.flow, n=5, folder=str(tmp_path))
    assert isinstance(info.value, BlobError)
    assert BAD_URI in str(info.value)
    assert "cannot open blob store" in str(info.value)
    assert len(calls) == 0  # nothing ran against a store that cannot be opened


def test_store_commands_report_an_unknown_blob_scheme_in_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STERNA_BLOBS", BAD_URI)
    for command in (["cache", "verify"], ["cache", "ls"], ["cache", "gc"]):
        result = CliRunner().invoke(cli, command, prog_name="sterna")
        line = assert_user_error(result, BAD_URI, "cannot open blob store")
        assert line.startswith("Error: ")


def test_a_missing_bucket_leaves_the_run_uncached_but_right(
        s3_port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    uri = (f"s3://sterna-no-such-bucket-{uuid.uuid4().hex[:8]}/blobs?"
           f"endpoint_override=127.0.0.1:{s3_port}&scheme=http&region=us-east-1")
    sterna.configure(blobs=uri)
    calls = Calls(tmp_path / "calls.jsonl")
    f = build_flow(calls)
    with pytest.warns(SternaWarning, match="not stored") as caught:
        run = sterna.run(f.flow, n=12, folder=str(tmp_path))
    assert run.status == "succeeded"
    assert_outputs(run.outputs, 12)
    assert any(uri in str(w.message) for w in caught)
    assert entries() == {}
    assert local_object_files() == []
