"""The `autocast` run key (issue "Beyond 2019": reduced precision as an option): a float32 run under
torch.autocast to bfloat16 computes its products in bfloat16 (its results move by about bfloat16's
rounding, 2⁻⁸ relative), has its own id, and the runs without it keep theirs."""

import pytest

from conftest import final_values
from harness.run.runner import Runner
from harness.suite.load import SuiteError, load_suite

SUITE = """
    name = "bf16"
    [defaults]
    kind = "gdu"
    seeds = [0]
    device = "cpu"
    batch_size = 5
    T = 300
    K = 10
    dataset = { name = "random", input_shape = [6], num_classes = 3, n_train = 10, n_test = 10 }
    model = { name = "p", input_size = 6, output_size = 3, hidden = [8], activation = "sigmoid", init = "torch" }
    algorithm = { name = "ep", beta = 0.01 }

    [[runs]]
    name = "fp32"

    [[runs]]
    name = "bf16"
    autocast = "bfloat16"
"""


def test_bfloat16_autocast_changes_the_numbers_by_its_rounding_and_the_id(registry, suite_file, tmp_path):
    suite = load_suite(suite_file(SUITE), registry)
    fp32, bf16 = suite.runs
    assert fp32.config().get("autocast") is None and bf16.config()["autocast"] == "bfloat16"
    assert fp32.id.split("-")[-1] != bf16.id.split("-")[-1]
    runner = Runner(suite, registry, tmp_path / "r")
    runner.execute(suite.runs)
    a, b = final_values(runner, fp32), final_values(runner, bf16)
    assert a["residual"] < 1e-5  # float32 settles to its rounding
    assert b["residual"] > 1e-4  # bfloat16 products: the fixed point is only as good as 3 significant digits
    assert b["residual"] < 0.05


@pytest.mark.parametrize("edit, float64, message", [
    ('autocast = "bfloat16"', True, 'runs[1] (bf16).autocast: autocast = \'bfloat16\' applies to float32 runs'),
    ('autocast = "float16"', False, "runs[1] (bf16).autocast: expected one of 'off', 'bfloat16', got 'float16'"),
])
def test_a_bad_autocast_is_refused_naming_the_run(registry, suite_file, edit, float64, message):
    text = SUITE.replace('autocast = "bfloat16"', edit)
    if float64:
        text = text.replace('[[runs]]\n    name = "bf16"\n', '[[runs]]\n    name = "bf16"\n    dtype = "float64"\n')
    with pytest.raises(SuiteError) as err:
        load_suite(suite_file(text), registry)
    assert message in str(err.value), str(err.value)


def test_training_under_one_autocast_context_sees_every_update():
    """The whole run kind runs in one autocast context: two training steps in it must equal two steps each
    in its own (no stale bfloat16 copy of an updated weight), and BPTT after an EP free phase in the same
    context must still reach every weight (no gradient-less copy made under no_grad)."""
    import copy

    import torch

    from bench_algorithms.bptt import BPTT
    from bench_algorithms.ep import EP
    from bench_models import PNet
    from harness.run.environment import precision

    torch.manual_seed(0)
    m = PNet(hidden=[8], input_size=6, output_size=3, activation="sigmoid", init="torch")
    x, y = torch.rand(5, 6), m.target(torch.randint(0, 3, (5,)))
    cpu = torch.device("cpu")
    for algorithm in (EP(0.2, lr=[0.1, 0.1]), BPTT(lr=[0.1, 0.1])):
        together, apart = copy.deepcopy(m), copy.deepcopy(m)
        with precision(cpu, "bfloat16"):
            for _ in range(2):
                algorithm.train_step(together, x, y, T=20, K=5)
        for _ in range(2):
            with precision(cpu, "bfloat16"):
                algorithm.train_step(apart, x, y, T=20, K=5)
        for p, q in zip(together.parameters(), apart.parameters()):
            assert torch.equal(p, q), type(algorithm).__name__
    trained = copy.deepcopy(m)
    with precision(cpu, "bfloat16"):
        EP(0.2).processes(trained, x, y, T=20, K=5)  # casts the weights under no_grad first
        BPTT(lr=[0.1, 0.1]).train_step(trained, x, y, T=20, K=5)
    assert all(not torch.equal(p, q) for p, q in zip(trained.parameters(), m.parameters()))
