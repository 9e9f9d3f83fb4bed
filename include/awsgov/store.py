"""The history store: Parquet tables partitioned Hive-style by day, under one base URL (folder or s3://).

Layout: ``<base>/<table>/dt=YYYY-MM-DD/part-<chunk>.parquet``. A chunk is the unit one task writes (an account,
a batch, or ``all``); rewriting a chunk replaces exactly that file, so reruns never duplicate rows. Files are
written under a hidden temporary name and renamed into place (local) or PUT in one request (S3), so a crash
mid-write leaves the previous version readable. Files starting with ``.`` or ``_`` are ignored by Athena,
DuckDB and pyarrow, so temporaries never show up in queries. The partition column ``dt`` lives in the path
only, never in the files.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

_CHUNK_RE = re.compile(r"^[A-Za-z0-9_.=-]{1,128}$")
_DT_DIR = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")


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
        target = self.path(relpath)
        parent = target.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if self.local:
            tmp = f"{parent}/.{target.rsplit('/', 1)[1]}.tmp-{uuid.uuid4().hex}"
            with open(tmp, "wb") as fh:
                fh.write(data)
            Path(tmp).replace(target)
        else:
            self.fs.pipe_file(target, data)
        return target

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
        path = self.put_bytes(f"{table}/dt={day_s}/part-{chunk}.parquet", buf.getvalue())
        log.info("store: wrote %d rows to %s/dt=%s chunk %s", arrow.num_rows, table, day_s, chunk)
        return path

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
        part = self.partition_path(table, day)
        if not self.fs.exists(part):
            return []
        names = (p.rsplit("/", 1)[-1] for p in self.fs.ls(part, detail=False))
        parts = (n for n in names if n.startswith("part-") and n.endswith(".parquet"))
        return sorted(n[len("part-") : -len(".parquet")] for n in parts)

    def prune(self, table: str, day: dt.date | str, keep: Iterable[str]) -> list[str]:
        """Delete the chunks of a day that a complete rerun did not write (e.g. an account that left).

        :param keep: chunk names to keep.
        """
        keep = set(keep)
        dropped = [c for c in self.chunks(table, day) if c not in keep]
        for chunk in dropped:
            self.fs.rm(f"{self.partition_path(table, day)}/part-{chunk}.parquet")
        return dropped

    def read(
        self,
        table: str,
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
        *,
        columns: list[str] | None = None,
        schema: pa.Schema | None = None,
    ) -> pd.DataFrame:
        """Read days ``start..end`` (inclusive) of a table into one DataFrame with a ``dt`` column (ISO string).

        :param schema: the table's schema, so that an empty result still has its columns.
        """
        lo = _as_date(start) if start else dt.date.min
        hi = _as_date(end) if end else dt.date.max
        tables = []
        for day in self.days(table):
            if not lo <= day <= hi:
                continue
            for chunk in self.chunks(table, day):
                with self.fs.open(f"{self.partition_path(table, day)}/part-{chunk}.parquet", "rb") as fh:
                    t = pq.read_table(fh, columns=columns, schema=schema)
                tables.append(t.append_column("dt", pa.array([day.isoformat()] * t.num_rows, pa.string())))
        if not tables:
            cols = columns or (schema.names if schema is not None else [])
            empty = pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
            empty["dt"] = pd.Series(dtype="object")
            return empty
        return pa.concat_tables(tables, promote_options="default").to_pandas()
