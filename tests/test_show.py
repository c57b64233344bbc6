"""`bench show`: what each run resolves to, as TOML that parses back to the same values, or JSON."""

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.commands import main
from harness.suite.load import load_suite
from harness.suite.show import as_json, as_toml, resolved

SUITES = sorted((Path(__file__).resolve().parent.parent / "suites").glob("*.toml"))


def _without_none(v):
    if isinstance(v, dict):
        return {k: _without_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_without_none(x) for x in v if x is not None]
    return v


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_toml_and_json_give_every_resolved_value(registry, path):
    runs = load_suite(path, registry).runs
    parsed = tomllib.loads(as_toml(runs))["runs"]
    assert parsed == [_without_none(resolved(r)) for r in runs]
    assert json.loads(as_json(runs)) == [resolved(r) for r in runs]
    # every run kind parameter and every component parameter is there, defaults included
    for r, shown in zip(runs, json.loads(as_json(runs))):
        assert set(r.params) <= set(shown)
        for slot, comp in r.slots.items():
            for c, s in zip(comp if isinstance(comp, list) else [comp], shown[slot] if isinstance(comp, list)
                            else [shown[slot]]):
                assert s == {"name": c["name"], **c["params"]}


def test_bench_show_prints_the_eb_rows_sigmoid():
    path = Path(__file__).resolve().parent.parent / "suites" / "table1.toml"
    out = CliRunner().invoke(main, ["show", str(path), "--only", "EB-1h"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    runs = tomllib.loads(out.output)["runs"]
    assert len(runs) == 10 and {r["name"] for r in runs} == {"EB-1h"}
    assert {(r["model"]["name"], r["model"]["activation"]) for r in runs} == {("eb", "sigmoid")}
    assert out.output.count('activation = "sigmoid"') == 10
    assert "# max_batches: not set (None)" in out.output


def test_bench_show_refuses_a_suite_that_drops_a_key(tmp_path):
    suite = tmp_path / "old.toml"
    suite.write_text('[defaults]\nkind = "train"\ndataset = "mnist"\nmodel = { name = "p", activation = "sigmoid" }\n'
                     '[[runs]]\nname = "EB-1h"\nT = 100\nK = 12\nmodel = { name = "eb" }\nalgorithm = "ep"\n')
    out = CliRunner().invoke(main, ["show", str(suite)])
    assert out.exit_code == 1
    assert "runs[0] (EB-1h).model: names model 'eb', not [defaults]'s 'p'" in out.output
