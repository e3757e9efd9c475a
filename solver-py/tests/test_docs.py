"""The examples in the package's docstrings run and print what they say."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["deqsolve", "deqsolve.torch", "deqsolve.torchdeq", "deqsolve._batch"])
def test_docstring_examples(module):
    if module != "deqsolve":
        pytest.importorskip("torch")
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if module in ("deqsolve", "deqsolve.torch", "deqsolve.torchdeq"):
        assert result.attempted > 0, f"{module} has no examples"
