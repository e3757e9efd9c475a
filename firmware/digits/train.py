"""Trains the DEQ digit classifier of the firmware example `digits`, from scratch.

    python firmware/digits/train.py [--out-dir firmware/digits] [--epochs 40]

Data: scikit-learn's handwritten digits (1797 images of 8 × 8 pixels, values 0–16, ten
classes; the data ships inside the scikit-learn wheel, nothing is downloaded), scaled to
x = pixels / 16 (exact in float32), split with a fixed seed into 1437 training and 360
test images (stratified).

Model: the DEQ layer z* = tanh(W z* + U x + b) with hidden width H = 32 and the readout
logits = R z* + c. W is the projection of a free parameter V onto the spectral-norm ball
of radius 0.9 (W = V · min(1, 0.9 / ‖V‖₂)), so the layer is a contraction for every
input: a fixed point exists, is unique, and every solver finds it. The fixed point and
its gradient come from `deqsolve.torch.fixed_point` (Broyden with 8 pairs forward, the
implicit backward pass with the same solver): no unrolled iterations, no torchdeq.

Writes, into --out-dir:
  model.safetensors  F32 tensors W [H, H], U [H, 64], b [H], R [10, H], c [10] and
                     metadata activation = tanh: the model file of `deq solve`/`deq export`;
  test.safetensors   x [360, 64] (F32, the test images) and label [360] (I64): an input
                     file of `deq solve`, which reports the accuracy when labels are present.

Fixed seeds (torch, the split, the batch order) make a run repeatable on one machine;
torch's CPU kernels may round differently on another, so a retrained model can differ
in the last bits (and the accuracy by an image or two).
"""

import argparse
import pathlib
import time

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import deqsolve.torch

HIDDEN = 32
RADIUS = 0.9
TEST = 360


class DigitsDEQ(torch.nn.Module):
    """z* = tanh(W z* + U x + b), logits = R z* + c."""

    def __init__(self, inputs, hidden, classes):
        super().__init__()
        self.v = torch.nn.Parameter(torch.zeros(hidden, hidden))
        self.inject = torch.nn.Linear(inputs, hidden)  # U, b
        self.readout = torch.nn.Linear(hidden, classes)  # R, c
        self.hidden = hidden

    def w(self):
        """V projected onto ‖W‖₂ ≤ RADIUS: the layer is a contraction."""
        norm = torch.linalg.matrix_norm(self.v, 2)
        return self.v * torch.clamp(RADIUS / (norm + 1e-12), max=1.0)

    def forward(self, x, **solve):
        w, c = self.w(), self.inject(x)
        z, info = deqsolve.torch.fixed_point(
            lambda z: torch.tanh(z @ w.T + c), torch.zeros(len(x), self.hidden), **solve
        )
        return self.readout(z), info


def data(seed):
    """The fixed split: (x_train, y_train, x_test, y_test), x = pixels / 16."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y, test_size=TEST, random_state=seed, stratify=y)


def accuracy(model, x, y):
    with torch.no_grad():
        logits, info = model(torch.from_numpy(x), tol_rel=1e-6)
    assert all(s == "converged" for s in info["status"]), info["status"]
    return float((logits.argmax(1).numpy() == y).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=pathlib.Path, default=pathlib.Path(__file__).parent)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    x_train, x_test, y_train, y_test = data(args.seed)
    model = DigitsDEQ(x_train.shape[1], HIDDEN, 10)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    order = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        total = 0.0
        for idx in torch.randperm(len(xt), generator=order).split(32):
            logits, _ = model(xt[idx], tol_rel=1e-5, backward={"tol_rel": 1e-5})
            loss = torch.nn.functional.cross_entropy(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            print(
                f"epoch {epoch + 1:3d}: loss {total / len(xt):.4f}, "
                f"test accuracy {accuracy(model, x_test, y_test):.4f} ({time.perf_counter() - t0:.0f} s)"
            )

    args.out_dir.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        tensors = {
            "W": model.w(),
            "U": model.inject.weight,
            "b": model.inject.bias,
            "R": model.readout.weight,
            "c": model.readout.bias,
        }
        save_file(
            {k: v.detach().float().contiguous() for k, v in tensors.items()},
            args.out_dir / "model.safetensors",
            metadata={"activation": "tanh"},
        )
    save_file(
        {"x": torch.from_numpy(x_test).contiguous(), "label": torch.from_numpy(y_test).long()},
        args.out_dir / "test.safetensors",
    )
    print(
        f"test accuracy {accuracy(model, x_test, y_test):.4f} on {len(y_test)} images; "
        f"‖W‖₂ = {torch.linalg.matrix_norm(model.w(), 2).item():.3f}; "
        f"wrote {args.out_dir / 'model.safetensors'} and {args.out_dir / 'test.safetensors'}"
    )


if __name__ == "__main__":
    main()
