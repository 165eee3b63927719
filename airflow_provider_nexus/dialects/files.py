"""Local raw files read the same way for every dialect that uploads them (COPY, write_pandas,
load jobs): the union of the files' columns, lower-cased; CSV and NDJSON values as text."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from typing import Any

from airflow_provider_nexus.dialects.base import SOURCE_ROW
from airflow_provider_nexus.errors import NexusConfigError, NexusDataError


def parquet_module() -> Any:
    """pyarrow.parquet, which reading Parquet files in Python needs (every dialect but DuckDB)."""
    try:
        import pyarrow.parquet
    except ImportError as exc:
        raise NexusConfigError(
            "reading Parquet source files needs pyarrow: pip install 'airflow-provider-nexus[parquet]'"
        ) from exc
    return pyarrow.parquet


def csv_header(path: str) -> list[str]:
    # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column's name
    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = [h.strip().lower() for h in next(csv.reader(fh), [])]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise NexusDataError(
            f"{path}:1: column(s) {', '.join(map(repr, repeated))} appear more than once in the header"
        )
    return header


def csv_columns(paths: Sequence[str]) -> list[str]:
    """Union of the files' headers, in first-seen order (files may differ: union by name)."""
    seen: dict[str, None] = {}
    for path in paths:
        for name in csv_header(path):
            seen.setdefault(name)
    return list(seen)


def ndjson_columns(paths: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for path in paths:
        for record in ndjson_records(path):
            for key in record:
                seen.setdefault(key.lower())
    return list(seen)


def ndjson_records(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise NexusDataError(f"{path}:{number}: not valid JSON: {exc.msg}") from None


def ndjson_rows(path: str, columns: list[str]) -> Iterator[list[Any]]:
    for record in ndjson_records(path):
        lowered = {k.lower(): v for k, v in record.items()}
        yield [json_text(lowered.get(c)) for c in columns]


def json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parquet_types(paths: Sequence[str], arrow_types: Sequence[tuple[str, str]], fallback: str) -> dict[str, str]:
    """Column -> SQL type from the files' schemas: the first family of `arrow_types` (a
    ``pyarrow.types.is_*`` name and the dialect's type) that matches, else `fallback`."""
    pq = parquet_module()
    import pyarrow.types as pat

    types: dict[str, str] = {}
    for path in paths:
        for field in pq.read_schema(path):
            sql_type = next((t for check, t in arrow_types if getattr(pat, check)(field.type)), fallback)
            types.setdefault(field.name.lower(), sql_type)
    return types


def column_types(
    paths: Sequence[str], file_format: str, file_column: str, text_type: str, arrow_types: Sequence[tuple[str, str]]
) -> dict[str, str]:
    """Column -> SQL type of the staged rows: CSV and NDJSON columns as text, Parquet columns by
    their Arrow type (text when none of `arrow_types` matches). `file_column` must be free."""
    if file_format == "csv":
        types = dict.fromkeys(csv_columns(paths), text_type)
    elif file_format == "ndjson":
        types = dict.fromkeys(ndjson_columns(paths), text_type)
    elif file_format == "parquet":
        types = parquet_types(paths, arrow_types, text_type)
    else:
        raise ValueError(f"unknown file format {file_format!r}; known: csv, ndjson, parquet")
    for reserved in (file_column, SOURCE_ROW):
        if reserved in types:
            raise NexusDataError(f"input files have a column named {reserved!r}, which Nexus reserves")
    return types


def parquet_rows(path: str, columns: list[str]) -> Iterator[list[Any]]:
    pq = parquet_module()
    table = pq.read_table(path)
    names = {n.lower(): n for n in table.column_names}
    for batch in table.to_batches(max_chunksize=50_000):
        data = {n.lower(): batch.column(i).to_pylist() for i, n in enumerate(batch.schema.names)}
        for i in range(batch.num_rows):
            yield [data[c][i] if c in names else None for c in columns]


def csv_rows(path: str, columns: list[str]) -> list[list[str | None]]:
    """Rows of one CSV file aligned on `columns` (the union of headers); empty fields are NULL."""
    header = csv_header(path)
    index = [header.index(c) if c in header else None for c in columns]
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        out = []
        for record in reader:
            if not record:
                continue
            if len(record) != len(header):  # a cut or padded row would shift or lose values
                raise NexusDataError(f"{path}:{reader.line_num}: {len(record)} field(s), the header has {len(header)}")
            out.append([(record[i] or None) if i is not None else None for i in index])
        return out
