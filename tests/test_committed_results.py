"""The committed results stay reachable: every run directory under results/<suite>/ is a run of
suites/<suite>.toml as the code resolves it today. A change that moves run ids (a new parameter
without ``quiet_default``, a renamed component) would orphan hours of stored runs without a word;
this test names them instead."""

from pathlib import Path

import pytest

from harness.api.components import Param
from harness.suite.load import load_suite

ROOT = Path(__file__).resolve().parent.parent
#: results/<suite>/, and results/reruns/<setting>/<suite>/ (a suite rerun under other execution settings)
COMMITTED = sorted(str(p.relative_to(ROOT / "results"))
                   for base in (ROOT / "results", *(ROOT / "results" / "reruns").glob("*/"))
                   for p in base.iterdir() if p.is_dir() and (ROOT / "suites" / f"{p.name}.toml").exists())


@pytest.mark.parametrize("where", COMMITTED)
def test_every_committed_run_is_a_run_of_its_suite(registry, where):
    suite = Path(where).name
    ids = {r.id for r in load_suite(ROOT / "suites" / f"{suite}.toml", registry).runs}
    stored = {p.name for p in (ROOT / "results" / where).iterdir() if p.is_dir() and (p / "status.json").exists()}
    orphans = sorted(stored - ids)
    assert not orphans, (f"results/{where}/ holds runs that suites/{suite}.toml no longer produces (their ids "
                         f"moved): {orphans[:5]}; give a new parameter quiet_default=True if its default "
                         "reproduces the old behaviour, else rerun them")


def test_a_quiet_parameter_at_its_default_leaves_ids_alone(registry, suite_file):
    text = """
        [defaults]
        kind = "train"
        T = 5
        K = 2
        model = { name = "p", input_size = 12, output_size = 4, hidden = [8] }
        dataset = { name = "blobs", input_size = 12, num_classes = 4 }
        [[runs]]
        name = "r"
        algorithm = { name = "bptt", lr = [0.1, 0.1] %s }
    """
    plain = load_suite(suite_file(text % ""), registry).runs[0].id
    assert registry.get("algorithm", "bptt").param("momentum").quiet_default
    assert load_suite(suite_file(text % ', momentum = 0.0, optimizer = "sgd"'), registry).runs[0].id == plain
    assert load_suite(suite_file(text % ", momentum = 0.9"), registry).runs[0].id != plain
    assert Param("x", int, 0).quiet_default is False  # a parameter is part of the id unless declared quiet
