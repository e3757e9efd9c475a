"""The Python examples of the repository's README run as written (one namespace, in
order, as a reader would paste them) and print what the README's prose promises."""

import contextlib
import io
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def python_blocks():
    text = README.read_text()
    section = text.split("## Python: `deqsolve`", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_examples_run():
    pytest.importorskip("torch")
    pytest.importorskip("torchdeq")
    blocks = python_blocks()
    assert len(blocks) == 3
    namespace = {}
    printed = []
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(README), "exec"), namespace)
        printed.append(out.getvalue())
    assert printed[0].startswith("64 of 64 converged;"), printed[0]
    assert re.match(r"loss after 30 steps: \d\.\d{3}\n", printed[1]), printed[1]
    # Training lowered the loss below chance (log 4 = 1.386).
    assert float(printed[1].split(": ")[1]) < 1.3
    assert re.match(r"loss \d\.\d{3}; gradient norm of the layer \d+\.\d{3}\n", printed[2]), printed[2]
    assert namespace["model"].layer.weight.grad.norm() > 0
