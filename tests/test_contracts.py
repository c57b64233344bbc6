"""Every optional member of a component is declared once, with its type and default, on its family's
contract class; the core reads a component that may not inherit it through the contract's one reader,
which refuses an undeclared name; the kit refuses a member of another type (issue "every optional
capability declared with its default on the contract it belongs to")."""

import inspect
from collections.abc import Callable

import pytest

from harness.api import algorithm, dataset, model, run_kind, tracker
from harness.api.algorithm import Algorithm
from harness.api.components import UndeclaredMember, declared_members, fits, member_problems
from harness.api.dataset import Dataset
from harness.api.executor import Executor
from harness.api.model import ConvergentRNN
from harness.api.run_kind import RunKind
from harness.api.tracker import Tracker
from harness.conformance import FAIL, as_component, check_algorithm, check_model, check_run_kind

CONTRACTS = {"model": ConvergentRNN, "algorithm": Algorithm, "dataset": Dataset, "run_kind": RunKind,
             "executor": Executor, "tracker": Tracker}
READERS = {ConvergentRNN: model.capability, Algorithm: algorithm.capability, Dataset: dataset.capability,
           RunKind: run_kind.capability, Tracker: tracker.capability}


def test_every_builtin_component_inherits_its_family_contract(registry):
    for family, contract in CONTRACTS.items():
        components = registry.all(family)
        assert components, family
        for c in components:
            assert issubclass(c.factory, contract), (family, c.name, c.factory)
            assert not member_problems(contract, c.build(c.example or {})), (family, c.name)


def test_every_declared_attribute_has_a_default_and_a_doc_comment():
    for contract in CONTRACTS.values():
        source = inspect.getsource(contract).splitlines()
        for name in vars(contract).get("__annotations__", {}):
            assert name in vars(contract), f"{contract.__name__}.{name} has no default"
            line = next(i for i, text in enumerate(source) if text.strip().startswith(f"{name}:"))
            assert source[line - 1].strip().startswith("#:"), f"{contract.__name__}.{name} has no #: comment"
            assert f"``{name}``" in (contract.__doc__ or ""), f"{contract.__name__}'s docstring omits {name}"


@pytest.mark.parametrize("contract", list(READERS), ids=lambda c: c.__name__)
def test_each_reader_refuses_an_undeclared_name(contract):
    with pytest.raises(UndeclaredMember, match=f"{contract.__name__} declares no member 'no_such_member'"):
        READERS[contract](object(), "no_such_member")
    with pytest.raises(UndeclaredMember):
        READERS[contract](object(), "_private")


def test_a_duck_typed_component_gets_the_declared_defaults():
    class Duck:
        fast = True
        lr = [0.1]

    duck = Duck()
    assert model.capability(duck, "fast") is True and model.capability(duck, "nudge_scale") == 1.0
    assert model.capability(duck, "compile_pays") is False and model.capability(duck, "input_shape") == ()
    assert algorithm.capability(duck, "lr") == [0.1] and algorithm.capability(duck, "stateful") is False
    assert algorithm.capability(duck, "state_dict") is None and algorithm.capability(duck, "share") is None
    assert dataset.capability(duck, "input_shape") is None and dataset.capability(duck, "augment") is True
    assert dataset.capability(duck, "conformance_skip")(duck) is None
    assert dataset.augmenter(duck) is None
    assert run_kind.capability(duck, "execute_batch") is None and run_kind.capability(duck, "batch_slots") == ()
    assert run_kind.declared(lambda ctx: None) is None
    assert tracker.capability(duck, "start")("run", {}, None) is None  # the default receives and does nothing


def test_a_component_that_inherits_reads_its_own_members(registry):
    ep = registry.get("algorithm", "ep-random-sign").build({"lr": [0.1]})
    assert algorithm.capability(ep, "stateful") is True and algorithm.capability(ep, "beta") == 0.1
    assert algorithm.capability(ep, "use_generator") == ep.use_generator
    assert model.capability(registry.get("model", "eb").build({"hidden": [3]}), "compile_pays") is True


def test_fits():
    assert fits(True, bool) and not fits(1, bool) and fits(1, float) and not fits(True, float)
    assert fits((1, 2), tuple[int, ...]) and not fits([1, 2], tuple[int, ...]) and fits(None, int | None)
    assert fits((0, 1.0), tuple[float, float]) and not fits((0,), tuple[float, float])
    assert fits(len, Callable[[str], int]) and not fits("len", Callable[[str], int])
    assert fits(("ep",), bool | tuple[str, ...]) and not fits("ep", bool | tuple[str, ...])
    assert declared_members(Algorithm)["stateful"] is bool  # a property: its getter's return type


def test_the_kit_refuses_a_member_of_another_type(registry):
    toy = type(registry.get("model", "toy").build({}))

    class PaysWhere(toy):
        compile_pays = "ep"  # a str: neither a bool nor a tuple of names

    builds = {r.check: r for r in check_model(PaysWhere, {"hidden_size": 4}, theorem=False)}["builds"]
    assert builds.status == FAIL and "compile_pays = 'ep' is not a bool | tuple[str, ...]" in builds.message

    class DuckAlgorithm:  # does not inherit Algorithm: every member it defines must fit
        stateful = "yes"

        def train_step(self, model, x, y, *, T, K):
            return {}

        def processes(self, model, x, y, *, T, K):
            raise NotImplementedError

    builds = {r.check: r for r in check_algorithm(DuckAlgorithm)}["builds"]
    assert builds.status == FAIL and "(it does not inherit Algorithm): stateful = 'yes' is not a bool" in \
        builds.message

    def kind_factory():
        def execute(ctx):
            pass

        execute.batch_slots = "algorithm"  # a str, where a tuple of slot names is declared
        return execute

    builds = {r.check: r for r in check_run_kind(kind_factory)}["builds"]
    assert builds.status == FAIL and "batch_slots = 'algorithm' is not a tuple[str, ...]" in builds.message


def test_the_kit_refuses_a_cost_that_the_kind_does_not_record():
    from harness.api.records import Records

    def kind_factory():
        return lambda ctx: None

    kind_factory.records = Records(metrics=("test_error", "seconds_per_epoch"), costs=("seconds_per_epoch",))
    assert {r.check: r for r in check_run_kind(kind_factory)}["records"].status != FAIL
    kind_factory.records = Records(metrics=("test_error",), curves=("seconds",), costs=("seconds", "secs_per_epoch"))
    records = {r.check: r for r in check_run_kind(kind_factory)}["records"]
    assert records.status == FAIL and "Records.costs names 'secs_per_epoch', which are neither among its" in \
        records.message


def test_a_bare_class_given_to_the_kit_gets_its_declaration(registry):
    eb = registry.get("model", "eb").factory
    comp = as_component("model", eb)
    assert comp.params == tuple(eb.params) and comp.example == eb.example and comp.doc


def test_the_kit_refuses_an_executor_that_inherits_the_contract_but_does_not_execute():
    """Executor.execute raises NotImplementedError: a subclass that forgot to write its own fails the kit."""
    from harness.conformance import check_executor

    class Forgetful(Executor):
        pass

    class Works(Executor):
        def execute(self, job, runs):
            return []

    bad = {r.check: r for r in check_executor(Forgetful)}
    assert bad["builds"].status == FAIL and "execute(job, runs) -> list[RunResult] of its own" in bad["builds"].message
    assert {r.check: r for r in check_executor(Works)}["builds"].status == "pass"
