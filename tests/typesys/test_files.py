"""File and Directory: paths whose identity is their content.

Two files with the same bytes are equal and hash alike wherever they live; a
directory's identity is the relative names and bytes of the files below it.
"""

import os
from pathlib import Path

import pytest
import xxhash

import sterna
from sterna.typesys.check import check_value
from sterna.typesys.resolve import resolve

File = sterna.File
Directory = sterna.Directory


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


# -- File -----------------------------------------------------------------------------------

def test_files_with_same_bytes_are_equal(tmp_path: Path) -> None:
    a = File(write(tmp_path / "a" / "one.bin", b"same bytes"))
    b = File(write(tmp_path / "b" / "two.dat", b"same bytes"))
    assert a.path != b.path
    assert a == b
    assert a.digest() == b.digest()
    assert hash(a) == hash(b)


def test_files_with_different_bytes_differ(tmp_path: Path) -> None:
    a = File(write(tmp_path / "a.txt", b"alpha"))
    b = File(write(tmp_path / "b.txt", b"alphb"))
    assert a != b
    assert a.digest() != b.digest()


def test_digest_is_xxh3_128_of_content(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10
    f = File(write(tmp_path / "data.bin", data))
    assert f.digest() == xxhash.xxh3_128_hexdigest(data)
    assert len(f.digest()) == 32


def test_empty_files_are_equal(tmp_path: Path) -> None:
    assert File(write(tmp_path / "e1", b"")) == File(write(tmp_path / "e2", b""))


def test_digest_follows_content_changes_of_a_new_size(tmp_path: Path) -> None:
    path = write(tmp_path / "f.txt", b"v1")
    f = File(path)
    first = f.digest()
    path.write_bytes(b"version two")
    assert f.digest() != first
    assert f.digest() == xxhash.xxh3_128_hexdigest(b"version two")


def test_digest_follows_content_changes_of_the_same_size(tmp_path: Path) -> None:
    path = write(tmp_path / "f.txt", b"aaaa")
    f = File(path)
    first = f.digest()
    path.write_bytes(b"bbbb")
    assert f.digest() != first
    assert f.digest() == xxhash.xxh3_128_hexdigest(b"bbbb")


def test_digest_reverts_when_content_reverts(tmp_path: Path) -> None:
    path = write(tmp_path / "f.txt", b"original")
    f = File(path)
    first = f.digest()
    path.write_bytes(b"changed!!")
    assert f.digest() != first
    path.write_bytes(b"original")
    assert f.digest() == first


def test_equality_follows_content_changes(tmp_path: Path) -> None:
    a = File(write(tmp_path / "a", b"one"))
    b = File(write(tmp_path / "b", b"two"))
    assert a != b
    (tmp_path / "b").write_bytes(b"one")
    assert a == b
    assert hash(a) == hash(b)


def test_same_path_files_are_equal(tmp_path: Path) -> None:
    path = write(tmp_path / "x", b"x")
    assert File(path) == File(str(path))


def test_equal_files_collapse_in_sets_and_dicts(tmp_path: Path) -> None:
    files = [File(write(tmp_path / f"copy{i}", b"payload")) for i in range(3)]
    other = File(write(tmp_path / "other", b"different"))
    assert len({*files, other}) == 2
    lookup = {files[0]: "found"}
    assert lookup[files[2]] == "found"
    assert other not in lookup


def test_hash_is_stable_across_instances(tmp_path: Path) -> None:
    path = write(tmp_path / "stable", b"content")
    assert hash(File(path)) == hash(File(path))
    assert File(path).digest() == File(path).digest()


def test_file_is_never_equal_to_other_kinds(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"x")
    f = File(path)
    assert f != str(path)
    assert f != path
    assert f != Directory(tmp_path)
    assert Directory(tmp_path) != f


def test_comparing_with_a_missing_file_is_false_not_an_error(tmp_path: Path) -> None:
    present = File(write(tmp_path / "here", b"x"))
    missing = File(tmp_path / "gone")
    assert present != missing
    assert missing != present


def test_file_accepts_str_path_and_file(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "a,b\n")
    for value in (path, str(path), File(path)):
        f = File(value)
        assert f.path == str(path)
        assert isinstance(f.path, str)
    assert File(Directory(tmp_path)).path == str(tmp_path)


def test_file_path_helpers(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.txt", "héllo")
    f = File(path)
    assert os.fspath(f) == str(path)
    assert isinstance(f, os.PathLike)
    assert f.name == "notes.txt"
    assert repr(f) == f"File({str(path)!r})"
    assert f.read_text() == "héllo"
    assert f.read_bytes() == "héllo".encode()
    with f.open() as handle:
        assert handle.read() == "héllo".encode()
    with f.open("r", encoding="utf-8") as handle:
        assert handle.read() == "héllo"
    assert Path(f).read_text() == "héllo"  # usable wherever a path is


def test_file_exists_only_for_regular_files(tmp_path: Path) -> None:
    assert File(write(tmp_path / "f", b"")).exists()
    assert not File(tmp_path / "missing").exists()
    assert not File(tmp_path).exists()


def test_file_digest_of_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        File(tmp_path / "missing").digest()


# -- Directory ------------------------------------------------------------------------------

def make_tree(root: Path, files: dict[str, bytes]) -> Directory:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write(root / name, data)
    return Directory(root)


TREE = {"a.txt": b"A", "sub/b.txt": b"B", "sub/deeper/c.bin": b"\x00C"}


def test_directories_with_same_tree_are_equal(tmp_path: Path) -> None:
    one = make_tree(tmp_path / "one", TREE)
    two = make_tree(tmp_path / "elsewhere" / "two", TREE)
    assert one == two
    assert one.digest() == two.digest()
    assert hash(one) == hash(two)
    assert len({one, two}) == 1


def test_directory_digest_ignores_creation_order(tmp_path: Path) -> None:
    forward = make_tree(tmp_path / "f", TREE)
    backward = make_tree(tmp_path / "b", dict(reversed(list(TREE.items()))))
    assert forward.digest() == backward.digest()


@pytest.mark.parametrize("variant", [
    {"a.txt": b"A", "sub/b.txt": b"b", "sub/deeper/c.bin": b"\x00C"},  # content changed
    {"A.txt": b"A", "sub/b.txt": b"B", "sub/deeper/c.bin": b"\x00C"},  # file renamed
    {"a.txt": b"A", "b.txt": b"B", "sub/deeper/c.bin": b"\x00C"},  # file moved up
    {"a.txt": b"A", "sub/b.txt": b"B"},  # file missing
    {**TREE, "extra": b""},  # file added (even empty)
    {"a.txt": b"B", "sub/b.txt": b"A", "sub/deeper/c.bin": b"\x00C"},  # contents swapped
], ids=["content", "renamed", "moved", "removed", "added", "swapped"])
def test_directory_digest_depends_on_names_and_content(
    tmp_path: Path, variant: dict[str, bytes],
) -> None:
    base = make_tree(tmp_path / "base", TREE)
    other = make_tree(tmp_path / "other", variant)
    assert base.digest() != other.digest()
    assert base != other


def test_directory_digest_follows_changes_in_place(tmp_path: Path) -> None:
    d = make_tree(tmp_path / "d", TREE)
    first = d.digest()
    (tmp_path / "d" / "sub" / "deeper" / "c.bin").write_bytes(b"\x00D")  # same size, nested
    second = d.digest()
    assert second != first
    write(tmp_path / "d" / "new.txt", b"")
    third = d.digest()
    assert third not in (first, second)
    (tmp_path / "d" / "new.txt").unlink()
    (tmp_path / "d" / "sub" / "deeper" / "c.bin").write_bytes(b"\x00C")
    assert d.digest() == first


def test_directory_rename_of_root_keeps_digest(tmp_path: Path) -> None:
    d = make_tree(tmp_path / "before", TREE)
    digest = d.digest()
    (tmp_path / "before").rename(tmp_path / "after")
    assert Directory(tmp_path / "after").digest() == digest


def test_empty_directories_are_equal(tmp_path: Path) -> None:
    (tmp_path / "e1").mkdir()
    (tmp_path / "e2").mkdir()
    assert Directory(tmp_path / "e1") == Directory(tmp_path / "e2")


def test_directory_differs_from_a_file_of_its_content(tmp_path: Path) -> None:
    d = make_tree(tmp_path / "d", {"only": b"x"})
    f = File(tmp_path / "d" / "only")
    assert d != f
    assert d.digest() != f.digest()


def test_directory_files_are_recursive_sorted_and_regular(tmp_path: Path) -> None:
    d = make_tree(tmp_path / "d", {"z.txt": b"z", "a/b.txt": b"b", "m.txt": b"m"})
    (tmp_path / "d" / "empty_sub").mkdir()
    files = d.files()
    assert all(isinstance(f, File) for f in files)
    rel = [Path(f.path).relative_to(tmp_path / "d").as_posix() for f in files]
    assert rel == ["a/b.txt", "m.txt", "z.txt"]


def test_directory_exists_only_for_directories(tmp_path: Path) -> None:
    assert Directory(tmp_path).exists()
    assert not Directory(tmp_path / "missing").exists()
    assert not Directory(write(tmp_path / "plain", b"")).exists()


def test_directory_path_helpers(tmp_path: Path) -> None:
    d = Directory(str(tmp_path / "data"))
    assert os.fspath(d) == str(tmp_path / "data")
    assert d.name == "data"
    assert repr(d) == f"Directory({str(tmp_path / 'data')!r})"


# -- as sterna types ------------------------------------------------------------------------

def _check(annotation: object, value: object) -> object:
    return check_value(resolve(annotation), value, owner="task 'files.t'", role="input",
                       name="path")


def test_file_instance_passes_as_is(tmp_path: Path) -> None:
    f = File(write(tmp_path / "f", b"x"))
    assert _check(File, f) is f


@pytest.mark.parametrize("as_str", [True, False])
def test_str_and_path_values_are_wrapped(tmp_path: Path, as_str: bool) -> None:
    path = write(tmp_path / "f", b"x")
    wrapped = _check(File, str(path) if as_str else path)
    assert type(wrapped) is File
    assert wrapped == File(path)
    folder = _check(Directory, str(tmp_path) if as_str else tmp_path)
    assert type(folder) is Directory
    assert folder.path == str(tmp_path)  # type: ignore[attr-defined]


def test_nonexistent_paths_are_rejected(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(sterna.TypeCheckError) as info:
        _check(File, missing)
    assert str(info.value) == (
        f"task 'files.t' input 'path': expected File, got str "
        f"(names {missing!r}, which is not an existing file)")
    with pytest.raises(sterna.TypeCheckError) as info:
        _check(Directory, missing)
    assert str(info.value) == (
        f"task 'files.t' input 'path': expected Directory, got str "
        f"(names {missing!r}, which is not an existing directory)")


def test_wrong_kind_of_path_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"x")
    with pytest.raises(sterna.TypeCheckError,
                       match=r"expected File, got str .*not an existing file"):
        _check(File, str(tmp_path))
    with pytest.raises(sterna.TypeCheckError,
                       match=r"expected Directory, got str .*not an existing directory"):
        _check(Directory, str(path))
    with pytest.raises(sterna.TypeCheckError) as info:
        _check(Directory, File(path))
    assert str(info.value) == "task 'files.t' input 'path': expected Directory, got File"
    with pytest.raises(sterna.TypeCheckError) as info:
        _check(File, Directory(tmp_path))
    assert str(info.value) == "task 'files.t' input 'path': expected File, got Directory"


def test_file_instance_whose_path_vanished_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"x")
    f = File(path)
    path.unlink()
    with pytest.raises(sterna.TypeCheckError, match="which is not an existing file"):
        _check(File, f)


@pytest.mark.parametrize("value", [3, b"/tmp", None, ["a"]])
def test_non_path_values_are_rejected(value: object) -> None:
    with pytest.raises(sterna.TypeCheckError) as info:
        _check(File, value)
    assert str(info.value).startswith("task 'files.t' input 'path': expected File, got ")


def test_optional_file_wraps_or_passes_none(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"x")
    assert _check(File | None, None) is None
    assert type(_check(File | None, str(path))) is File


def test_files_through_a_task_keep_content_identity(tmp_path: Path) -> None:
    src = write(tmp_path / "in" / "data.txt", b"rows")

    @sterna.task(name="files.copy")
    def copy(source: File, target_dir: Directory) -> File:
        out = Path(target_dir) / "copy.txt"
        out.write_bytes(source.read_bytes())
        return File(out)

    (tmp_path / "out").mkdir()
    result = copy(source=str(src), target_dir=str(tmp_path / "out"))
    assert isinstance(result, File)
    assert result.path == str(tmp_path / "out" / "copy.txt")
    assert result == File(src)
    assert hash(result) == hash(File(src))
