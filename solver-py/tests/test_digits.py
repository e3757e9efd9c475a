"""The digits classifier of the firmware example, trained from scratch.

``firmware/digits/train.py`` trains the DEQ classifier with ``deqsolve.torch.fixed_point``
(forward and implicit backward through our Broyden). Here it runs from scratch into a
temporary directory, as the README tells a user to, and its model must be a classifier
that ``deq solve`` runs: the tensors of the model format, a contractive layer, and a test
accuracy of at least 96 %. The test split it writes must be the committed one, bit for
bit (the firmware's test images). A retrained model may differ from the committed one
in its last bits (torch's CPU kernels differ between machines), so the models are
compared by accuracy, not bits.
"""

import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

from test_deq_cli import deq_binary

ROOT = pathlib.Path(__file__).resolve().parents[2]
DIGITS = ROOT / "firmware" / "digits"


def accuracy(model, test):
    """`deq solve`'s accuracy line for a model on the test file."""
    out = subprocess.run(
        [deq_binary(), "solve", "--model", str(model), "--input", str(test)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "converged 360/360" in out, out
    (acc,) = re.findall(r"accuracy (\d\.\d+) \((\d+)/360 rows", out)
    return float(acc[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    log = subprocess.run(
        [sys.executable, str(DIGITS / "train.py"), "--out-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert log.returncode == 0, log.stderr
    return out, log.stdout


def test_training_from_scratch_gives_a_contractive_classifier(trained):
    out, log = trained
    model = load_file(out / "model.safetensors")
    shapes = {k: v.shape for k, v in model.items()}
    assert shapes == {"W": (32, 32), "U": (32, 64), "b": (32,), "R": (10, 32), "c": (10,)}
    assert all(v.dtype == np.float32 for v in model.values())
    assert np.linalg.norm(model["W"].astype(np.float64), 2) <= 0.9 + 1e-5
    acc = accuracy(out / "model.safetensors", out / "test.safetensors")
    assert acc >= 0.96, log
    # The script's own figure (torch forward through deqsolve) is deq solve's, to an image.
    (torch_acc,) = re.findall(r"^test accuracy (\d\.\d+) on 360 images", log, flags=re.M)
    assert abs(float(torch_acc) - acc) <= 1.5 / 360


def test_the_split_is_the_committed_one(trained):
    out, _ = trained
    mine, committed = load_file(out / "test.safetensors"), load_file(DIGITS / "test.safetensors")
    assert mine.keys() == committed.keys() == {"x", "label"}
    assert committed["label"].dtype == np.int64
    for k in mine:
        assert np.array_equal(mine[k], committed[k]), k
    # x is pixels / 16: the firmware stores the pixels as bytes and divides exactly.
    assert np.array_equal(committed["x"] * 16, np.round(committed["x"] * 16))


def test_the_committed_model_is_at_least_96_percent():
    assert accuracy(DIGITS / "model.safetensors", DIGITS / "test.safetensors") >= 0.96
