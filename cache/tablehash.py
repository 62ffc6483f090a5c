"""Logical digests of Arrow tables and columns (xxh3_128, 32 lowercase hex chars).

A table digest is a cache key input, so it must change exactly when the *data* changes:

* it depends on the schema (field names, types, nullability, order) and the logical values;
* it does not depend on how the rows are split into record batches / chunks, on slicing
  offsets, on schema or field metadata, nor on the bytes that happen to sit under null slots.

Each column is hashed as a few independent streams, each fed chunk by chunk into one streaming
xxh3_128 hasher, so chunk boundaries never show:

* fixed-width values (ints, floats, dates, times, timestamps, durations, decimals,
  fixed-size binary): the values-buffer slice ``offset*width .. (offset+length)*width``, passed
  as a memoryview without copying. Chunks that contain nulls are first copied with their null
  slots zeroed, so whatever garbage lies under a null never reaches the hash. Floats are hashed
  bit for bit: ``-0.0`` differs from ``0.0`` and NaNs with different payloads differ.
* booleans: cast to uint8 (a copy; bits cannot be sliced at arbitrary offsets without one).
* string / binary (and their ``large_`` variants): the per-element byte lengths plus the data
  bytes between ``offsets[offset]`` and ``offsets[offset+length]`` (zero-copy), so
  ``["ab", "c"]`` and ``["a", "bc"]`` differ.
* nulls: the global row indices of null slots; a column without nulls feeds nothing.
* lists (all kinds), maps and structs are hashed recursively: list lengths plus the flattened
  child values; struct children with the parent's nulls merged in.
* dictionary, run-end-encoded and view (``string_view``…) arrays are decoded chunk by chunk
  (a copy) and hashed as their values, so two dictionaries with the same decoded values agree;
  extension arrays are hashed through their storage.
* unions: the per-row type codes plus each child's selected values in row order (a copy).
* anything else (types added to Arrow later) falls back to concatenating the column into one chunk
  and hashing its Arrow IPC serialisation. That path copies the whole column and may see bytes
  under null slots.

The final digest is xxh3_128 over a canonical description of the schema, the row count and
each column's stream digests. All integers are framed little-endian and every variable-length
part is length-prefixed, so no two different inputs can frame to the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

__all__ = ["digest_chunked", "digest_table"]

_UINT_BY_WIDTH: dict[int, pa.DataType] = {
    1: pa.uint8(),
    2: pa.uint16(),
    4: pa.uint32(),
    8: pa.uint64(),
}


def digest_table(table: pa.Table) -> str:
    """Digest of a table's schema (without metadata), row count and logical column values."""
    parts: list[bytes] = [b"sterna.table.v1", _int(table.num_rows), _int(table.num_columns)]
    for field, column in zip(table.schema, table.columns):
        parts.append(_field_desc(field).encode("utf-8"))
        parts.append(_column_digest(column))
    return xxhash.xxh3_128_hexdigest(_frame(parts))


def digest_chunked(column: pa.ChunkedArray | pa.Array) -> str:
    """Digest of one column's type and logical values, independent of its chunking."""
    return _column_digest(column).hex()


def _column_digest(column: pa.ChunkedArray | pa.Array) -> bytes:
    """Raw 16-byte digest of a column: its type, length and stream digests."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    hasher = _hasher_for(column.type)
    for chunk in chunks:
        hasher.feed(chunk)
    parts = [b"sterna.column.v1", _type_desc(column.type).encode("utf-8"), _int(hasher.rows)]
    return xxhash.xxh3_128_digest(_frame([*parts, hasher.digest()]))


# --- canonical framing and type descriptions -------------------------------------------------


def _int(value: int) -> bytes:
    """A non-negative integer as 8 little-endian bytes."""
    return value.to_bytes(8, "little")


def _frame(parts: list[bytes]) -> bytes:
    """Length-prefix every part, so that concatenations stay unambiguous."""
    return b"".join(_int(len(part)) + part for part in parts)


def _field_desc(field: pa.Field) -> str:
    """Name, type and nullability of a field; metadata is deliberately left out."""
    return f"{json.dumps(field.name)}:{_nested_field_desc(field)}"


def _nested_field_desc(field: pa.Field) -> str:
    """Type and nullability of a child field whose name Arrow itself does not compare."""
    return _type_desc(field.type) + ("" if field.nullable else " not null")


def _type_desc(dtype: pa.DataType) -> str:
    """A canonical, metadata-free description of a type (nested types described recursively)."""
    if isinstance(dtype, pa.BaseExtensionType):
        storage = _type_desc(dtype.storage_type)
        return f"extension<{dtype.extension_name}:{_ext_params(dtype)}:{storage}>"
    if pa.types.is_dictionary(dtype):
        values = _type_desc(dtype.value_type)
        return f"dictionary<{dtype.index_type},{values},ordered={int(dtype.ordered)}>"
    if pa.types.is_map(dtype):
        key, item = _nested_field_desc(dtype.key_field), _nested_field_desc(dtype.item_field)
        return f"map<{key},{item},sorted={int(dtype.keys_sorted)}>"
    if pa.types.is_fixed_size_list(dtype):
        return f"fixed_size_list<{_nested_field_desc(dtype.value_field)}>[{dtype.list_size}]"
    if _is_list_like(dtype):
        return f"{_list_kind(dtype)}<{_nested_field_desc(dtype.value_field)}>"
    if pa.types.is_struct(dtype):
        return "struct<" + ",".join(_field_desc(child) for child in dtype) + ">"
    if pa.types.is_union(dtype):
        children = ",".join(_field_desc(child) for child in dtype)
        return f"{dtype.mode}_union<{children}>{list(dtype.type_codes)}"
    if _is("is_run_end_encoded", dtype):
        return f"run_end_encoded<{dtype.run_end_type},{_type_desc(dtype.value_type)}>"
    return str(dtype)


def _ext_params(dtype: pa.BaseExtensionType) -> str:
    """The serialised parameters of an extension type, as hex."""
    serialize = getattr(dtype, "__arrow_ext_serialize__", None)
    if serialize is not None:
        return bytes(serialize()).hex()
    # Extension types implemented in C++ expose their parameters only through IPC.
    return pa.schema([pa.field("", dtype)]).serialize().to_pybytes().hex()


def _is(predicate: str, dtype: pa.DataType) -> bool:
    """``pa.types.<predicate>(dtype)``, False on a pyarrow too old to know the type."""
    check = getattr(pa.types, predicate, None)
    return bool(check is not None and check(dtype))


def _is_list_like(dtype: pa.DataType) -> bool:
    """Variable-size lists and list views (which flatten to the same logical values)."""
    return (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or _is("is_list_view", dtype)
        or _is("is_large_list_view", dtype)
    )


def _list_kind(dtype: pa.DataType) -> str:
    """The name of a list-like type without its child, e.g. ``large_list``."""
    return str(dtype).split("<", 1)[0]


# --- stream hashers -----------------------------------------------------------------------


def _values_view(array: pa.Array, width: int) -> memoryview:
    """Zero-copy view of the bytes of a fixed-width array's values, offset applied."""
    start = array.offset * width
    return memoryview(array.buffers()[1])[start : start + len(array) * width]


class _Hasher:
    """Streams of one column: global null positions, plus whatever a subclass adds."""

    def __init__(self) -> None:
        self.rows = 0
        self._nulls = xxhash.xxh3_128()

    def feed(self, chunk: pa.Array) -> None:
        """Add the next chunk; the row counter makes null positions global."""
        if len(chunk) == 0:
            return
        if chunk.null_count:
            positions = pc.indices_nonzero(pc.is_null(chunk))
            if self.rows:
                positions = pc.add(positions, pa.scalar(self.rows, pa.uint64()))
            self._nulls.update(_values_view(positions, 8))
        self._feed(chunk)
        self.rows += len(chunk)

    def _feed(self, chunk: pa.Array) -> None:
        """Hash the non-null content of one non-empty chunk."""

    def _streams(self) -> list[bytes]:
        """Digests of the subclass's streams."""
        return []

    def digest(self) -> bytes:
        """Combined digest of all streams fed so far."""
        return xxhash.xxh3_128_digest(_frame([self._nulls.digest(), *self._streams()]))


class _Fixed(_Hasher):
    """Fixed-width values: the values-buffer slice, with null slots zeroed first."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self._width = width
        self._values = xxhash.xxh3_128()
        self._plain = _UINT_BY_WIDTH.get(width, pa.binary(width))
        self._zero = pa.scalar(0 if width in _UINT_BY_WIDTH else bytes(width), self._plain)

    def _feed(self, chunk: pa.Array) -> None:
        if chunk.null_count:
            buffers = chunk.buffers()[:2]
            plain = pa.Array.from_buffers(self._plain, len(chunk), buffers, offset=chunk.offset)
            chunk = pc.fill_null(plain, self._zero)
        self._values.update(_values_view(chunk, self._width))

    def _streams(self) -> list[bytes]:
        return [self._values.digest()]


class _Bool(_Fixed):
    """Booleans as one byte each; null slots become 0."""

    def __init__(self) -> None:
        super().__init__(1)

    def _feed(self, chunk: pa.Array) -> None:
        if chunk.null_count:
            chunk = pc.fill_null(chunk, False)
        self._values.update(_values_view(pc.cast(chunk, pa.uint8()), 1))


class _Binary(_Hasher):
    """Variable-size binary: element lengths plus the contiguous data bytes."""

    def __init__(self, offset_width: int) -> None:
        super().__init__()
        self._offset_width = offset_width
        self._lengths = xxhash.xxh3_128()
        self._data = xxhash.xxh3_128()

    def _feed(self, chunk: pa.Array) -> None:
        lengths = pc.binary_length(chunk)
        if chunk.null_count:
            lengths = pc.fill_null(lengths, 0)
        self._lengths.update(_values_view(lengths, self._offset_width))
        start, end = self._data_span(chunk)
        if chunk.null_count and end - start != pc.sum(lengths).as_py():
            # Some null slots are backed by bytes: drop them (a copy) so they are not hashed.
            chunk = chunk.drop_null()
            start, end = self._data_span(chunk)
        if end > start:
            self._data.update(memoryview(chunk.buffers()[2])[start:end])

    def _data_span(self, chunk: pa.Array) -> tuple[int, int]:
        """Byte range of the chunk's data: ``offsets[offset]`` to ``offsets[offset+length]``."""
        width = self._offset_width
        first = chunk.offset * width
        offsets = memoryview(chunk.buffers()[1])[first : first + (len(chunk) + 1) * width]
        view = offsets.cast("i" if width == 4 else "q")
        return view[0], view[len(chunk)]

    def _streams(self) -> list[bytes]:
        return [self._lengths.digest(), self._data.digest()]


class _List(_Hasher):
    """Lists, list views and fixed-size lists: lengths plus the flattened child values."""

    def __init__(self, child: _Hasher, length_width: int) -> None:
        super().__init__()
        self._child = child
        self._length_width = length_width
        self._lengths = xxhash.xxh3_128()

    def _feed(self, chunk: pa.Array) -> None:
        lengths = pc.list_value_length(chunk)
        if chunk.null_count:
            lengths = pc.fill_null(lengths, 0)
        self._lengths.update(_values_view(lengths, self._length_width))
        # flatten() applies the offset and skips values under null slots.
        self._child.feed(chunk.flatten())

    def _streams(self) -> list[bytes]:
        return [self._lengths.digest(), self._child.digest()]


class _Struct(_Hasher):
    """Structs: one hasher per child; flatten() merges the struct's nulls into each child."""

    def __init__(self, children: list[_Hasher]) -> None:
        super().__init__()
        self._children = children

    def _feed(self, chunk: pa.Array) -> None:
        for child, values in zip(self._children, chunk.flatten()):
            child.feed(values)

    def _streams(self) -> list[bytes]:
        return [child.digest() for child in self._children]


class _Union(_Hasher):
    """Unions: the per-row type codes, plus each child's values in row order.

    Unions have no validity bitmap (their nulls live in the children). Selecting each child's
    rows copies them. The type codes and dense offsets are read from the buffers, because
    pyarrow's ``type_codes``/``offsets`` properties ignore the slice offset.
    """

    def __init__(self, dtype: pa.UnionType) -> None:
        super().__init__()
        self._codes = [pa.scalar(code, pa.int8()) for code in dtype.type_codes]
        self._dense = dtype.mode == "dense"
        self._children = [_hasher_for(child.type) for child in dtype]
        self._type_codes = xxhash.xxh3_128()

    def _feed(self, chunk: pa.Array) -> None:
        buffers = chunk.buffers()
        codes = pa.Array.from_buffers(
            pa.int8(), len(chunk), [None, buffers[1]], offset=chunk.offset
        )
        self._type_codes.update(_values_view(codes, 1))
        offsets = None
        if self._dense:
            offsets = pa.Array.from_buffers(
                pa.int32(), len(chunk), [None, buffers[2]], offset=chunk.offset
            )
        for index, (code, child) in enumerate(zip(self._codes, self._children)):
            rows = pc.equal(codes, code)
            values = chunk.field(index)  # sliced to the chunk for sparse unions
            child.feed(
                values.filter(rows) if offsets is None else values.take(offsets.filter(rows))
            )

    def _streams(self) -> list[bytes]:
        return [self._type_codes.digest()] + [child.digest() for child in self._children]


class _NullType(_Hasher):
    """The null type: every slot is null, so the row count says it all."""

    def feed(self, chunk: pa.Array) -> None:
        self.rows += len(chunk)


class _Converted(_Hasher):
    """Hash each chunk after converting it (decode, cast, unwrap) with ``convert``."""

    def __init__(self, inner: _Hasher, convert: Callable[[pa.Array], pa.Array]) -> None:
        super().__init__()
        self._inner = inner
        self._convert = convert

    def feed(self, chunk: pa.Array) -> None:
        if len(chunk):
            self._inner.feed(self._convert(chunk))
        self.rows = self._inner.rows

    def digest(self) -> bytes:
        return self._inner.digest()


class _Ipc(_Hasher):
    """Fallback for layouts this module does not know (none in pyarrow 26): concatenate all
    chunks and hash the Arrow IPC stream. Copies the column, may see bytes under nulls."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[pa.Array] = []

    def feed(self, chunk: pa.Array) -> None:
        if len(chunk):
            self._chunks.append(chunk)
            self.rows += len(chunk)

    def digest(self) -> bytes:
        if not self._chunks:
            return xxhash.xxh3_128_digest(b"")
        array = pa.concat_arrays(self._chunks)
        batch = pa.record_batch([array], names=[""])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        return xxhash.xxh3_128_digest(memoryview(sink.getvalue()))


def _hasher_for(dtype: pa.DataType) -> _Hasher:
    """The stream hasher for a type: zero-copy where the layout allows, a copy otherwise."""
    if pa.types.is_null(dtype):
        return _NullType()
    if isinstance(dtype, pa.BaseExtensionType):
        return _Converted(_hasher_for(dtype.storage_type), lambda chunk: chunk.storage)
    if pa.types.is_dictionary(dtype):
        return _Converted(_hasher_for(dtype.value_type), lambda chunk: chunk.dictionary_decode())
    if _is("is_run_end_encoded", dtype):
        return _Converted(_hasher_for(dtype.value_type), pc.run_end_decode)
    if _is("is_string_view", dtype) or _is("is_binary_view", dtype):
        large = pa.large_string() if _is("is_string_view", dtype) else pa.large_binary()
        return _Converted(_Binary(8), lambda chunk: chunk.cast(large))
    if pa.types.is_boolean(dtype):
        return _Bool()
    if pa.types.is_map(dtype):
        entries = pa.struct([dtype.key_field, dtype.item_field])
        as_list = pa.list_(pa.field("entries", entries, nullable=False))
        return _Converted(_List(_hasher_for(entries), 4), lambda chunk: chunk.cast(as_list))
    if pa.types.is_fixed_size_list(dtype) or _is_list_like(dtype):
        large = pa.types.is_large_list(dtype) or _is("is_large_list_view", dtype)
        return _List(_hasher_for(dtype.value_type), 8 if large else 4)
    if pa.types.is_struct(dtype):
        return _Struct([_hasher_for(child.type) for child in dtype])
    if pa.types.is_union(dtype):
        return _Union(dtype)
    if pa.types.is_string(dtype) or pa.types.is_binary(dtype):
        return _Binary(4)
    if pa.types.is_large_string(dtype) or pa.types.is_large_binary(dtype):
        return _Binary(8)
    width = _byte_width(dtype)
    if width is not None:
        return _Fixed(width)
    return _Ipc()


def _byte_width(dtype: pa.DataType) -> int | None:
    """Bytes per value of a flat fixed-width type, or None for any other layout."""
    if pa.types.is_union(dtype) or dtype.num_fields:
        return None
    try:
        bits = dtype.bit_width
    except ValueError:
        return None
    return bits // 8 if bits % 8 == 0 and dtype.num_buffers == 2 else None
