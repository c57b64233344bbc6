"""A component declares itself once, on its class: ``params``, ``slots``, ``example`` and the first
paragraph of its docstring as its doc (harness.api.components.declaration); ``register`` reads them,
and its explicit keywords override them."""

import inspect

import pytest

from harness import Param, Slot, hookimpl
from harness.api.components import ComponentError, declaration, first_paragraph
from harness.plugins import PluginManager

#: The entry points of eqprop-bench itself (pyproject.toml), and the core's own executor.
BUILT_IN = {"models", "algorithms", "metrics", "datasets", "runs", "executors", "trackers", "harness"}


def _built_in(registry):
    comps = [c for c in registry.all() if c.plugin in BUILT_IN]
    assert {c.plugin for c in comps} == BUILT_IN  # every built-in plugin loaded
    return comps


def _same(a, b) -> bool:
    """Equal defaults; a tuple in a signature (an immutable default) equals the list a suite writes."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_every_built_in_component_is_a_class_that_declares_itself(registry):
    for c in _built_in(registry):
        assert isinstance(c.factory, type), f"{c.family} {c.name}: {c.factory!r} is not a class"
        # the hook names the class only: what is registered is the class's own declaration
        assert declaration(c.factory) == {"params": c.params, "doc": c.doc, "slots": c.slots,
                                          "example": c.example}, f"{c.family} {c.name}"


def test_every_built_in_doc_is_its_docstrings_first_paragraph(registry):
    for c in _built_in(registry):
        assert c.doc, f"{c.family} {c.name} has no doc (`bench list` shows it)"
        assert c.doc == first_paragraph(c.factory.__doc__), f"{c.family} {c.name}"
        assert "  " not in c.doc and c.doc == c.doc.strip()


def test_declared_defaults_equal_the_constructors_keyword_defaults(registry):
    """A default is written twice, in ``params`` and as the ``__init__`` keyword's default: they must agree
    (the declared one is what runs use; the keyword's is what direct Python callers get)."""
    differ = []
    for c in _built_in(registry):
        signature = inspect.signature(c.factory)
        for p in c.params:
            q = signature.parameters.get(p.name)
            if p.required or q is None or q.default is inspect.Parameter.empty:
                continue
            if not _same(p.default, q.default):
                differ.append(f"{c.family} {c.name}: {p.name} declared {p.default!r}, __init__ {q.default!r}")
    assert not differ, "\n".join(differ)


def test_first_paragraph_joins_its_lines_with_single_spaces():
    doc = """What it is,
        on two lines

        More: not shown.
        """
    assert first_paragraph(doc) == "What it is, on two lines"
    assert first_paragraph("One line.") == "One line."
    assert first_paragraph(None) == ""


class Declared:
    """The doc, from the class.

    Not in the doc.
    """

    params = (Param("width", int, 4, "units"),)
    example = {"width": 2}

    def __init__(self, width=4):
        self.width = width


def width_net(width=4):
    """A plain function declares nothing but its docstring."""
    return Declared(width)


def _register(*calls, family="model"):
    hook = {"model": "register_models", "run_kind": "register_run_kinds"}[family]

    class Plugin:
        pass

    def impl(register):
        for args, kwargs in calls:
            register(*args, **kwargs)

    setattr(Plugin, hook, staticmethod(hookimpl(specname=hook)(impl)))
    m = PluginManager()
    info = m.register_plugin(Plugin(), "decl")
    return m, info


def test_register_reads_the_class_and_explicit_keywords_override_it():
    m, info = _register((("declared", Declared), {}),
                        (("explicit", Declared), {"params": [Param("width", int, 8)], "doc": "Mine.",
                                                  "example": {"width": 3}}),
                        (("function", width_net), {"params": [Param("width", int, 4)]}))
    assert info.status == "loaded", info.error
    declared, explicit, function = (m.registry.get("model", n) for n in ("declared", "explicit", "function"))
    assert (declared.params, declared.doc, declared.example) == (Declared.params, "The doc, from the class.",
                                                                 {"width": 2})
    assert declared.example is not Declared.example  # a copy: the class's dict stays as it is
    assert (explicit.params[0].default, explicit.doc, explicit.example) == (8, "Mine.", {"width": 3})
    assert function.doc == "A plain function declares nothing but its docstring."
    assert [p.name for p in function.params] == ["width"] and function.example is None
    assert function.build({}).width == 4


def test_a_declaration_of_the_wrong_shape_is_refused_with_the_components_name():
    class Single:
        params = Param("width", int, 4)  # one Param, not a list of them

        def __init__(self, width=4):
            pass

    _, info = _register((("single", Single), {}))
    assert info.status == "failed"
    assert "model 'single'" in info.error and "declare a list or tuple of harness.Param" in info.error
    # an explicit keyword is not read from the class, so a class attribute of another meaning is no matter
    _, info = _register((("single", Single), {"params": [Param("width", int, 4)]}))
    assert info.status == "loaded", info.error


def test_only_run_kinds_declare_slots():
    class Kind:
        slots = (Slot("model", "model"),)

        def __call__(self, ctx):
            pass

    _, info = _register((("kind", Kind), {}))
    assert info.status == "failed" and "only run kinds declare slots" in info.error
    m, info = _register((("kind", Kind), {}), family="run_kind")
    assert info.status == "loaded", info.error
    assert m.registry.get("run_kind", "kind").slots == Kind.slots


def test_the_ep_variants_are_ep_with_their_nudges_fixed(registry):
    from bench_algorithms import EP

    for name, variant, random_sign in (("ep-random-sign", "positive", True), ("ep-negative", "negative", False),
                                       ("ep-centered", "centered", False)):
        alg = registry.get("algorithm", name).build({"beta": 0.3})
        assert isinstance(alg, EP) and (alg.variant, alg.random_sign, alg.beta) == (variant, random_sign, 0.3)
    with pytest.raises(ComponentError, match="unknown algorithm"):
        registry.get("algorithm", "ep-sideways")


def test_dchn_is_p_conv_with_the_authors_defaults(registry):
    from bench_models import DCHN, PConvNet

    comp = registry.get("model", "dchn")
    assert comp.factory is DCHN and issubclass(DCHN, PConvNet)
    net = DCHN(input_shape=[3, 8, 8], channels=[3, 4], padding=[1, 0], output_size=3)
    assert net.padding == {"conv1": 1, "conv0": 0}
