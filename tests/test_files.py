"""Local raw files as the uploading dialects read them (PostgreSQL COPY, Snowflake, BigQuery)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_nexus.dialects.files import csv_header, csv_rows
from airflow_provider_nexus.errors import NexusDataError


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefforder_id,email\no1,a@x.org\n".encode())
    assert csv_header(str(path)) == ["order_id", "email"]
    assert csv_rows(str(path), ["order_id", "email"]) == [["o1", "a@x.org"]]


def test_a_row_with_more_or_fewer_fields_than_the_header_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("order_id,email,amount\no1,a@x.org,1\no2,b@x.org,2,EXTRA\n")
    with pytest.raises(NexusDataError, match=r"ragged\.csv:3: 4 field\(s\), the header has 3"):
        csv_rows(str(path), ["order_id", "email", "amount"])


def test_a_repeated_column_name_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("order_id,email,Email\no1,a@x.org,b@x.org\n")
    with pytest.raises(NexusDataError, match=r"twice\.csv:1: column\(s\) 'email' appear more than once"):
        csv_header(str(path))


def test_parquet_without_pyarrow_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow is an optional dependency (the `parquet` extra): without it, reading a Parquet
    source is a config error that names the extra, not a retried failure of the warehouse."""
    import sys

    from airflow_provider_nexus.dialects.files import parquet_types
    from airflow_provider_nexus.errors import NexusConfigError

    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # what a missing package looks like
    with pytest.raises(NexusConfigError, match=r"airflow-provider-nexus\[parquet\]"):
        parquet_types(["x.parquet"], [], "VARCHAR")
