"""`sextant monitors baseline` on files pandas and pyarrow write: the same data as CSV and as
Parquet (several row groups, Snappy or uncompressed) gives the same SageMaker statistics,
and a codec Sextant does not read is a clear error, not a crash.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import sextant_bin

pytestmark = pytest.mark.sextant_only


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 5000
    price = rng.normal(30.0, 8.0, n)
    price[::17] = np.nan
    plan = rng.choice(["basic", "plus", "pro"], n).astype(object)
    plan[::23] = None
    return pd.DataFrame(
        {
            "calls": rng.integers(0, 9, n),
            "price": price,
            "plan": plan,
            "tenure": rng.uniform(0, 60, n),
        }
    )


def baseline(data: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sextant_bin(), "monitors", "baseline", "--data", str(data), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def statistics(out: Path) -> dict:
    stats = json.loads((out / "statistics.json").read_text())
    return {f["name"]: f for f in stats["features"]} | {"_items": stats["dataset"]["item_count"]}


@pytest.mark.parametrize("compression", ["snappy", "none"])
def test_parquet_and_csv_of_the_same_data_give_the_same_statistics(tmp_path, compression):
    df = frame()
    df.to_csv(tmp_path / "data.csv", index=False)
    pq.write_table(
        pa.Table.from_pandas(df, preserve_index=False),
        tmp_path / "data.parquet",
        row_group_size=700,
        compression=compression,
    )
    assert pq.ParquetFile(tmp_path / "data.parquet").num_row_groups == 8
    for name in ["data.csv", "data.parquet"]:
        done = baseline(tmp_path / name, tmp_path / f"out-{name}")
        assert done.returncode == 0, done.stderr
    csv, parquet = statistics(tmp_path / "out-data.csv"), statistics(tmp_path / "out-data.parquet")
    assert csv["_items"] == parquet["_items"] == 5000
    assert list(csv) == list(parquet), "columns in the schema's order"
    for name in ["calls", "price", "tenure"]:
        a, b = csv[name], parquet[name]
        assert a["inferred_type"] == b["inferred_type"], name
        sa, sb = a["numerical_statistics"], b["numerical_statistics"]
        assert sa["common"] == sb["common"], name
        for key in ["mean", "sum", "std_dev", "min", "max"]:
            assert sb[key] == pytest.approx(sa[key], rel=1e-9), (name, key)
    assert csv["calls"]["inferred_type"] == "Integral"
    assert parquet["price"]["numerical_statistics"]["common"]["num_missing"] == len(range(0, 5000, 17))
    expected = df["price"].dropna()
    assert parquet["price"]["numerical_statistics"]["mean"] == pytest.approx(expected.mean(), rel=1e-12)
    assert parquet["price"]["numerical_statistics"]["std_dev"] == pytest.approx(expected.std(ddof=0), rel=1e-9)
    a, b = csv["plan"], parquet["plan"]
    assert a["inferred_type"] == b["inferred_type"] == "String"
    assert a["string_statistics"]["common"] == b["string_statistics"]["common"]
    assert a["string_statistics"]["common"]["num_missing"] == len(range(0, 5000, 23))
    assert b["string_statistics"]["distinct_count"] == 3


def test_an_unsupported_codec_or_a_broken_file_is_a_clear_error(tmp_path):
    df = frame()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "z.parquet", compression="zstd")
    done = baseline(tmp_path / "z.parquet", tmp_path / "out")
    assert done.returncode != 0
    assert "z.parquet" in done.stderr and "ZSTD" in done.stderr.upper(), done.stderr
    assert "panicked" not in done.stderr
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    done = baseline(tmp_path / "bad.parquet", tmp_path / "out2")
    assert done.returncode != 0
    assert "bad.parquet" in done.stderr and "Parquet" in done.stderr, done.stderr
    assert "panicked" not in done.stderr
