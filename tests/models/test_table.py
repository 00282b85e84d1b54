"""The architecture table without any framework: lazy imports, options and their documentation."""

import importlib.util
import inspect
import os
import subprocess
import sys

import pytest

from nitrain import models
from nitrain.models import _plans
from nitrain.models._architectures import ARCHITECTURES, Lazy
from nitrain.models._spec import Option, options

FRAMEWORK_MODULES = ("torch", "keras", "tensorflow", "jax")


def test_import_imports_no_framework():
    """Importing the package, listing, fetching creators and reading their docs import no framework."""
    code = (
        "import sys\n"
        "import nitrain, nitrain.models, nitrain.models.torch, nitrain.models.keras\n"
        "from nitrain import models\n"
        "models.list_architectures(details=True)\n"
        "for fw in ('torch', 'keras'):\n"
        "    models.fetch_architecture('unet', dim=3, framework=fw).__doc__\n"
        f"loaded = sorted(set({FRAMEWORK_MODULES!r}) & set(sys.modules))\n"
        "assert not loaded, f'imported {loaded}'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NITRAIN_FRAMEWORK"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_builders_are_lazy_references_into_their_framework_package():
    for arch in ARCHITECTURES.values():
        assert arch.frameworks == ("torch", "keras")
        for fw, builder in arch.builders.items():
            assert isinstance(builder, Lazy)
            assert builder.module.startswith(f"nitrain.models.{fw}."), builder
            # the module exists; finding it imports neither it nor its framework
            assert importlib.util.find_spec(builder.module) is not None, builder


def test_details_lists_every_option_with_default_and_description():
    plain = models.list_architectures()
    table = models.list_architectures(details=True)
    assert [r["name"] for r in table] == [r["name"] for r in plain]
    assert all("options" not in r for r in plain)
    for row in table:
        plan = ARCHITECTURES[row["name"]].plan
        params = {
            p.name: p.default
            for p in inspect.signature(plan).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        assert list(row["options"]) == list(params)
        for name, opt in row["options"].items():
            assert isinstance(opt, Option)
            assert opt.default == params[name]
            assert opt.description and "\n" not in opt.description
    text = repr(table)
    assert text == str(table)
    for row in table:
        assert f"{row['name']} - {row['description']}" in text
        for name, opt in row["options"].items():
            assert f"{name}={opt.default!r}" in text and opt.description in text
    assert "unet - U-Net" in text and "modes: segmentation (default), sigmoid, regression" in text
    with pytest.raises(TypeError, match="details must be True or False"):
        models.list_architectures(details="yes")


def test_docstrings_document_options():
    for name, arch in ARCHITECTURES.items():
        for dim in arch.dims:
            for fw in arch.frameworks:
                doc = models.fetch_architecture(name, dim=dim, framework=fw).__doc__
                assert "Options:" in doc, name
                for opt, o in arch.options.items():
                    assert f"{opt}={o.default!r}" in doc and o.description in doc
                    assert o.description in arch.plan.__doc__


def test_unknown_option_names_the_options_before_any_build():
    pytest.importorskip("torch")
    valid = r"basic: unknown option\(s\) \['widths'\]; valid options: \['filters', 'dropout', 'norm'\]"
    with pytest.raises(TypeError, match=valid):
        models.fetch_architecture("basic", dim=2, framework="torch")((32, 32, 1), widths=(4,))


def test_options_must_describe_exactly_the_keyword_parameters():
    with pytest.raises(TypeError, match=r"describe exactly its options \['a', 'b'\]"):

        @options(a="one")
        def plan(input_image_size, number_of_outcomes, mode, dim, *, a=1, b=2):
            """A plan."""

    @options(a="the first", b="the second")
    def plan2(input_image_size, number_of_outcomes, mode, dim, *, a=1, b=2):
        """A plan."""

    assert plan2.options == {"a": Option(1, "the first"), "b": Option(2, "the second")}
    assert plan2.__doc__.startswith("A plan.\n\nOptions:\n    a=1  the first\n    b=2  the second")


def test_every_plan_is_in_the_table():
    planned = {name for name, fn in vars(_plans).items() if inspect.isfunction(fn) and hasattr(fn, "options")}
    assert planned == {a.plan.__name__ for a in ARCHITECTURES.values()}
