"""The history store: Parquet tables partitioned Hive-style by day, under one base URL (folder or s3://).

Layout: ``<base>/<table>/dt=YYYY-MM-DD/part-<chunk>.parquet``. A chunk is the unit one task writes (an account,
a batch, or ``all``); rewriting a chunk replaces exactly that file, so reruns never duplicate rows. Files are
written under a hidden temporary name, flushed to disk (fsync) and renamed into place, then the folder is synced
(local), or PUT in one request (S3), so a crash mid-write leaves the previous version readable. A temporary left
by a killed writer is deleted by the next write to its folder once it is older than ``STALE_TEMP_SECONDS`` (no
live writer holds one that long). Files starting with ``.`` or ``_`` are ignored by Athena,
DuckDB and pyarrow, so temporaries never show up in queries. The partition column ``dt`` lives in the path
only, never in the files.

A day written by many tasks is many small files, and opening thousands of them dominates reading a week. After a
run, :meth:`Store.compact` writes the day's chunks once more as one ``_compact.parquet`` (a read cache: the ``_``
keeps it out of Athena, DuckDB and pyarrow queries, which read the chunks as before). It records each chunk's size
and modification stamp; readers take from it only the chunks whose file is still that version and read any chunk
rewritten, added or deleted since from the chunk files, so a task rerun after the compaction is never hidden.

A chunk that several tasks add to (the alert ledger, an account's anomalies) is changed only through
:meth:`Store.update`: read, merge and write under the chunk's lock (local: ``fcntl`` lock on a hidden lock file,
held across threads and processes), or, on an object store, a conditional PUT on the version read, retried on a
conflict. No concurrent writer's rows are lost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import io
import json
import logging
import os
import queue
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

_CHUNK_RE = re.compile(r"^[A-Za-z0-9_.=-]{1,128}\Z")
_DT_DIR = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})\Z")
COMPACT_FILE = "_compact.parquet"
_CHUNK_COLUMN = "__chunk"  # in the compact file only: which chunk a row came from
_SOURCES_KEY = b"awsgov.chunk_versions"  # compact file metadata: {chunk: version of the file it was made from}
_TEMP_RE = re.compile(r"^\..+\.tmp-[0-9a-f]{32}\Z")  # put_bytes' temporaries: .<name>.tmp-<uuid4 hex>
# A temporary older than this belongs to a writer that died (a live write takes well under a second).
STALE_TEMP_SECONDS = 3600
# Conflicting commits on an object store: attempts before update() gives up.
UPDATE_ATTEMPTS = 20


class ConflictError(RuntimeError):
    """An object-store commit kept losing to concurrent writers (see :meth:`Store.update`)."""


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_precondition_failure(exc: BaseException) -> bool:
    """Whether an object store refused a conditional PUT (HTTP 412 / 409: someone else wrote first)."""
    text = f"{type(exc).__name__} {exc}"
    return any(s in text for s in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"))


def _as_date(day: dt.date | str) -> dt.date:
    return day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)[:10])


class Store:
    """Read and write day-partitioned Parquet tables under ``url``.

    :param url: a local folder path or an fsspec URL such as ``s3://bucket/prefix``.
    """

    def __init__(self, url: str) -> None:
        self.fs, root = fsspec.core.url_to_fs(str(url))
        proto = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.local = proto in ("file", "local")
        self.root = str(Path(root).resolve()) if self.local else root.rstrip("/")
        self.url = self.root if self.local else f"{proto}://{self.root}"

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- paths --------------------------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """Absolute path (within the filesystem) of a relative location in the store."""
        return "/".join([self.root, *parts])

    def partition_path(self, table: str, day: dt.date | str) -> str:
        """Folder of one day of a table."""
        return self.path(table, f"dt={_as_date(day).isoformat()}")

    # -- raw bytes ------------------------------------------------------------------------------------------------
    def put_bytes(self, relpath: str, data: bytes) -> str:
        """Write a file atomically (temp + rename locally; a single PUT on object stores).

        :param relpath: path relative to the store root.
        :param data: the file content.
        """
        if not self.local:
            target = self.path(relpath)
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(target, data)
            return target
        with self.writer(relpath) as fh:
            fh.write(data)
        return self.path(relpath)

    @contextlib.contextmanager
    def writer(self, relpath: str) -> Iterator[BinaryIO]:
        """A file written as a stream and put in place atomically when the block ends without an error (locally
        temp + fsync + rename; on object stores spooled to a local temporary file, then one upload): a file too large
        to hold in memory as one ``bytes``, e.g. a day's findings export.

        :param relpath: path relative to the store root.
        """
        target = self.path(relpath)
        parent = target.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if not self.local:
            with tempfile.NamedTemporaryFile(prefix="awsgov-store-") as spool:
                yield spool
                spool.flush()
                self.fs.put_file(spool.name, target)
            return
        self._clean_temporaries(parent)
        tmp = f"{parent}/.{target.rsplit('/', 1)[1]}.tmp-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(parent)  # and the rename itself survives a power loss

    @staticmethod
    def _clean_temporaries(folder: str, max_age: float = STALE_TEMP_SECONDS) -> list[str]:
        """Delete this class's temporaries in ``folder`` older than ``max_age`` seconds (left by killed writers).

        Only names of the temporary pattern are touched, and only old ones: a live writer's temporary is young.
        """
        removed = []
        limit = time.time() - max_age
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return removed
        for entry in entries:
            if not _TEMP_RE.match(entry.name):
                continue
            with contextlib.suppress(FileNotFoundError):  # another writer may clean it at the same moment
                if entry.stat(follow_symlinks=False).st_mtime < limit:
                    os.unlink(entry.path)
                    removed.append(entry.name)
        if removed:
            log.warning("store: removed %d stale temporary file(s) in %s: %s", len(removed), folder, removed)
        return removed

    def get_bytes(self, relpath: str) -> bytes:
        """Read a file relative to the store root."""
        return self.fs.cat_file(self.path(relpath))

    def exists(self, relpath: str) -> bool:
        """Whether a file or folder exists relative to the store root."""
        return self.fs.exists(self.path(relpath))

    def put_text(self, relpath: str, text: str) -> str:
        """Write UTF-8 text atomically; returns the absolute path."""
        return self.put_bytes(relpath, text.encode("utf-8"))

    def get_text(self, relpath: str) -> str:
        """Read UTF-8 text relative to the store root."""
        return self.get_bytes(relpath).decode("utf-8")

    # -- tables ---------------------------------------------------------------------------------------------------
    def write(
        self,
        table: str,
        day: dt.date | str,
        frame: pd.DataFrame | pa.Table,
        *,
        chunk: str = "all",
        schema: pa.Schema | None = None,
        sort_by: Iterable[str] | None = None,
        _condition: dict[str, str] | None = None,
    ) -> str:
        """Replace one chunk of one day of a table, atomically and idempotently.

        :param table: table name, e.g. ``ta_checks``.
        :param day: partition date.
        :param frame: rows to write (may be empty: an empty chunk records "collected, nothing found").
        :param chunk: the writer's unit, e.g. an account id; ``[A-Za-z0-9_.=-]`` only.
        :param schema: the table's Arrow schema; rows are cast to it so every file of a table agrees.
        :param sort_by: columns to sort by so a rerun writes identical bytes.
        """
        if not _CHUNK_RE.match(chunk):
            raise ValueError(f"invalid chunk name {chunk!r}")
        if isinstance(frame, pd.DataFrame):
            frame = frame.drop(columns=["dt"], errors="ignore")
            if sort_by:
                frame = frame.sort_values(list(sort_by), kind="mergesort")
            arrow = pa.Table.from_pandas(frame.reset_index(drop=True), schema=schema, preserve_index=False)
        else:
            arrow = frame.cast(schema) if schema is not None else frame
        buf = io.BytesIO()
        pq.write_table(arrow, buf, compression="zstd")
        day_s = _as_date(day).isoformat()
        relpath = f"{table}/dt={day_s}/part-{chunk}.parquet"
        if _condition:  # update() on an object store: a PUT that fails if the file changed since it was read
            path = self.path(relpath)
            self.fs.pipe_file(path, buf.getvalue(), **_condition)
        else:
            path = self.put_bytes(relpath, buf.getvalue())
        log.info("store: wrote %d rows to %s/dt=%s chunk %s", arrow.num_rows, table, day_s, chunk)
        return path

    def update(
        self,
        table: str,
        day: dt.date | str,
        chunk: str,
        change: Callable[[pa.Table], pd.DataFrame | pa.Table | None],
        *,
        schema: pa.Schema,
        sort_by: Iterable[str] | None = None,
    ) -> str | None:
        """Read-modify-write one chunk without losing a concurrent writer's rows.

        ``change`` gets the chunk as it is now (empty with ``schema``'s columns when absent) and returns the new
        content, or None to leave the file alone. Locally the whole read-change-write holds an exclusive lock on
        the chunk (``.part-<chunk>.lock`` next to it; ``fcntl``, so threads and processes both wait). On an object
        store the write is a PUT conditional on the version read (``If-Match`` / ``If-None-Match``); when another
        writer got there first, the chunk is read again and ``change`` called again, so it must be a pure function
        of what it is given.

        :returns: the path written, or None when ``change`` returned None.
        """
        if not _CHUNK_RE.match(chunk):
            raise ValueError(f"invalid chunk name {chunk!r}")
        if self.local:
            with self._chunk_lock(table, day, chunk):
                new = change(self.read_chunk(table, day, chunk, schema))
                return None if new is None else self.write(table, day, new, chunk=chunk, schema=schema,
                                                           sort_by=sort_by)
        path = f"{self.partition_path(table, day)}/part-{chunk}.parquet"
        for _attempt in range(UPDATE_ATTEMPTS):
            try:
                # The version first, then the content: content newer than the version only makes the PUT fail.
                etag = self.fs.info(path).get("ETag")
                if not etag:
                    raise ConflictError(f"{self.url} gives no ETag: cannot commit {table} chunk {chunk} safely")
                current, condition = self._read_files([path], None, schema), {"IfMatch": etag}
            except FileNotFoundError:
                current, condition = schema.empty_table(), {"IfNoneMatch": "*"}
            new = change(current)
            if new is None:
                return None
            try:
                return self.write(table, day, new, chunk=chunk, schema=schema, sort_by=sort_by, _condition=condition)
            except Exception as exc:  # noqa: BLE001 - only a lost race is retried
                if not _is_precondition_failure(exc):
                    raise
                log.info("store: %s/%s chunk %s changed while merging; merging again", table, day, chunk)
                self.fs.invalidate_cache(path)
        raise ConflictError(f"{table}/{day} chunk {chunk}: {UPDATE_ATTEMPTS} conflicting writers in a row")

    @contextlib.contextmanager
    def _chunk_lock(self, table: str, day: dt.date | str, chunk: str) -> Iterator[None]:
        """Exclusive lock on one local chunk (a hidden file, so query engines never see it)."""
        part = self.partition_path(table, day)
        os.makedirs(part, exist_ok=True)
        fd = os.open(f"{part}/.part-{chunk}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed, also when the process dies
            yield
        finally:
            os.close(fd)

    def days(self, table: str) -> list[dt.date]:
        """Days that have a partition for ``table``, ascending."""
        base = self.path(table)
        if not self.fs.exists(base):
            return []
        out = []
        for entry in self.fs.ls(base, detail=False):
            m = _DT_DIR.match(entry.rstrip("/").rsplit("/", 1)[-1])
            if m:
                out.append(dt.date.fromisoformat(m.group(1)))
        return sorted(out)

    def chunks(self, table: str, day: dt.date | str) -> list[str]:
        """Chunk names present in one day of a table."""
        return sorted(self._versions(table, day))

    def _versions(self, table: str, day: dt.date | str) -> dict[str, str]:
        """{chunk: version} of one day: size and modification stamp (ETag on object stores) of its file."""
        part = self.partition_path(table, day)
        if not self.fs.exists(part):
            return {}
        out = {}
        for info in self.fs.ls(part, detail=True):
            name = info["name"].rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("part-") and name.endswith(".parquet"):
                stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
                out[name[len("part-"): -len(".parquet")]] = f"{info.get('size')}:{stamp}"
        return out

    def prune(self, table: str, day: dt.date | str, keep: Iterable[str]) -> list[str]:
        """Delete the chunks of a day that a complete rerun did not write (e.g. an account that left).

        :param keep: chunk names to keep.
        """
        keep = set(keep)
        dropped = [c for c in self.chunks(table, day) if c not in keep]
        for chunk in dropped:
            self.fs.rm(f"{self.partition_path(table, day)}/part-{chunk}.parquet")
        return dropped

    def compact(self, table: str, day: dt.date | str, min_chunks: int = 2) -> int:
        """Write the read cache of one day (see the module docstring); returns the chunks it holds (0: not written).

        :param table: table name.
        :param day: partition date.
        :param min_chunks: leave days of fewer chunks alone (nothing to gain).
        """
        versions = self._versions(table, day)
        if len(versions) < min_chunks:
            return 0
        part = self.partition_path(table, day)
        chunks = sorted(versions)
        paths = [f"{part}/part-{c}.parquet" for c in chunks]
        arrow_fs = self.arrow_fs()
        schema = pa.unify_schemas([pq.read_schema(p, filesystem=arrow_fs) for p in paths],  # chunks of older code
                                  promote_options="permissive")
        dataset = ds.dataset(paths, format="parquet", filesystem=arrow_fs, schema=schema)
        out_schema = schema.append(pa.field(_CHUNK_COLUMN, pa.string())).with_metadata(
            {**(schema.metadata or {}), _SOURCES_KEY: json.dumps(versions).encode()})
        chunk_of = dict(zip(paths, chunks, strict=True))
        # Decoding the chunks and encoding the compact file both run in Arrow, outside the GIL, and took about as
        # long as each other (a realistic day of config_findings: millions of rows): a reader thread decodes the
        # next row group while this thread writes one, so the two overlap on two cores. Row groups of about 64k
        # rows, at most two waiting, so memory holds a few groups and the compressed output, not the whole day.
        groups: queue.Queue[pa.Table | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def decode() -> None:
            try:
                pending, rows = [], 0
                # File by file in chunk order (the rows' order in the compact file): each row's chunk is its
                # file's, one value per batch instead of the path of every row (the dataset's __filename).
                for fragment in sorted(dataset.get_fragments(), key=lambda f: chunk_of[f.path]):
                    chunk = pa.scalar(chunk_of[fragment.path], pa.string())
                    for batch in fragment.to_batches(schema=schema, columns=schema.names):
                        pending.append(pa.RecordBatch.from_arrays(
                            [*batch.columns, pa.repeat(chunk, batch.num_rows)], schema=out_schema))
                        rows += batch.num_rows
                        if rows >= 64 * 1024:
                            groups.put(pa.Table.from_batches(pending, out_schema))
                            pending, rows = [], 0
                        if stop.is_set():
                            return
                if pending:
                    groups.put(pa.Table.from_batches(pending, out_schema))
                groups.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the writing thread, which raises it
                groups.put(exc)

        buf = io.BytesIO()
        reader = threading.Thread(target=decode, name="awsgov-compact-read", daemon=True)
        reader.start()
        try:
            with pq.ParquetWriter(buf, out_schema, compression="zstd") as writer:
                while (group := groups.get()) is not None:
                    if isinstance(group, BaseException):
                        raise group
                    writer.write_table(group)
        finally:
            stop.set()
            while reader.is_alive():  # unblock a reader waiting to put, then let it end
                with contextlib.suppress(queue.Empty):
                    groups.get(timeout=0.1)
            reader.join()
        self.put_bytes(f"{table}/dt={_as_date(day).isoformat()}/{COMPACT_FILE}", buf.getvalue())
        return len(versions)

    def _compacted(self, table: str, day: dt.date, versions: dict[str, str]) -> tuple[str, list[str]] | None:
        """(path, chunks still current in it) of a day's compact file, or None."""
        path = f"{self.partition_path(table, day)}/{COMPACT_FILE}"
        try:
            with self.fs.open(path, "rb") as fh:
                meta = pq.read_schema(fh).metadata or {}
        except FileNotFoundError:
            return None
        made_from = json.loads(meta.get(_SOURCES_KEY, b"{}"))
        current = sorted(c for c, v in versions.items() if made_from.get(c) == v)
        return (path, current) if current else None

    def scan(
        self,
        table: str,
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
        *,
        columns: list[str] | None = None,
        schema: pa.Schema | None = None,
        where: pc.Expression | None = None,
    ) -> pa.Table | None:
        """Days ``start..end`` (inclusive) of a table as one Arrow table with a ``dt`` column; None if no file.

        Rows come by day, then by chunk name. A compact file stands in for the chunks it still matches; other chunks
        are read from their files, many at once as an Arrow dataset (opened and decoded by Arrow's threads). Without
        ``schema`` each file is read alone and the results are merged, so files of older schemas still read.

        :param where: keep only the rows it selects, filtered while reading (memory holds the rows kept, not the
            day: a realistic organization's Config findings are millions of rows a day).
        """
        lo = _as_date(start) if start else dt.date.min
        hi = _as_date(end) if end else dt.date.max
        pieces = []
        for day in self.days(table):
            if not lo <= day <= hi:
                continue
            versions = self._versions(table, day)
            if not versions:
                continue
            part = self.partition_path(table, day)
            compact = self._compacted(table, day, versions) if len(versions) > 1 else None
            if compact is None:
                t = self._read_files([f"{part}/part-{c}.parquet" for c in sorted(versions)], columns, schema,
                                     where=where)
            else:
                path, current = compact
                t = self._read_files([path], columns, schema, chunk_column=True, where=where)
                t = t.filter(pc.is_in(t[_CHUNK_COLUMN], pa.array(current, pa.string())))
                # Chunks written, rewritten or added after the compaction: from their own files, in chunk order.
                extra = []
                for c in sorted(set(versions) - set(current)):
                    one = self._read_files([f"{part}/part-{c}.parquet"], columns, schema, where=where)
                    extra.append(one.append_column(_CHUNK_COLUMN, pa.array([c] * one.num_rows, pa.string())))
                if extra:
                    t = pa.concat_tables([t, *extra], promote_options="default").sort_by(_CHUNK_COLUMN)  # stable
                t = t.drop_columns([_CHUNK_COLUMN])
            pieces.append(self._with_day(t, day))
        return pa.concat_tables(pieces, promote_options="default") if pieces else None

    def read(
        self,
        table: str,
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
        *,
        columns: list[str] | None = None,
        schema: pa.Schema | None = None,
        where: pc.Expression | None = None,
    ) -> pd.DataFrame:
        """Read days ``start..end`` (inclusive) of a table into one DataFrame with a ``dt`` column (ISO string).

        :param schema: the table's schema, so that an empty result still has its columns.
        :param where: only the rows it selects (:meth:`scan`).
        """
        scanned = self.scan(table, start, end, columns=columns, schema=schema, where=where)
        if scanned is None:
            cols = columns or (schema.names if schema is not None else [])
            empty = pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
            empty["dt"] = pd.Series(dtype="object")
            return empty
        return scanned.to_pandas()

    def read_chunk(self, table: str, day: dt.date | str, chunk: str, schema: pa.Schema | None = None) -> pa.Table:
        """One chunk file of one day of a table (no ``dt`` column); empty, with ``schema``'s columns, when absent.

        Writers that merge into their own chunk (ledgers, anomalies, events) read it back with this.

        :param table: table name.
        :param day: partition day.
        :param chunk: chunk name (``part-<chunk>.parquet``).
        :param schema: the table's schema: read with it (older files gain missing columns as nulls).
        """
        path = f"{self.partition_path(table, day)}/part-{chunk}.parquet"
        if not self.fs.exists(path):
            return (schema or pa.schema([])).empty_table()
        if schema is not None:
            return self._read_files([path], None, schema)
        with self.fs.open(path, "rb") as fh:
            return pq.read_table(fh)

    def arrow_fs(self) -> pafs.FileSystem:
        """The store's filesystem for pyarrow (datasets, ParquetFile)."""
        return pafs.LocalFileSystem() if self.local else pafs.PyFileSystem(pafs.FSSpecHandler(self.fs))

    def _read_files(self, paths: list[str], columns: list[str] | None, schema: pa.Schema | None,
                    chunk_column: bool = False, where: pc.Expression | None = None) -> pa.Table:
        """Files of one day, in order, as one table (with the compact file's chunk column when asked), only the rows
        ``where`` selects."""
        extra = [_CHUNK_COLUMN] if chunk_column else []
        if schema is not None:  # one dataset; columns missing from older files come back as nulls
            full = schema.append(pa.field(_CHUNK_COLUMN, pa.string())) if chunk_column else schema
            dataset = ds.dataset(paths, format="parquet", filesystem=self.arrow_fs(), schema=full)
            return dataset.to_table(columns=[*(columns or schema.names), *extra], filter=where)
        tables = []
        for path in paths:
            with self.fs.open(path, "rb") as fh:
                t = pq.read_table(fh)
            t = t.filter(where) if where is not None else t
            tables.append(t.select([*columns, *extra]) if columns else t)
        return pa.concat_tables(tables, promote_options="default")

    @staticmethod
    def _with_day(t: pa.Table, day: dt.date) -> pa.Table:
        return t.append_column("dt", pa.array([day.isoformat()] * t.num_rows, pa.string()))
