"""A small DEQ classifier trained with torchdeq for a few hundred steps, once with its
own ``broyden`` and once with ``deqsolve_broyden`` (forward and IFT backward), from the
same initialisation and data: the final losses agree within 5 %."""

import pytest

torch = pytest.importorskip("torchdeq") and pytest.importorskip("torch")
import torchdeq  # noqa: E402

import deqsolve.torchdeq  # noqa: E402

STEPS, HIDDEN, FEATURES, CLASSES = 300, 24, 10, 4


def data():
    g = torch.Generator().manual_seed(0)
    centres = 2.0 * torch.randn(CLASSES, FEATURES, generator=g)
    labels = torch.randint(0, CLASSES, (512,), generator=g)
    x = centres[labels] + 3.0 * torch.randn(512, FEATURES, generator=g)
    return x, labels


class Classifier(torch.nn.Module):
    def __init__(self, solver):
        super().__init__()
        torch.manual_seed(1)
        self.inject = torch.nn.Linear(FEATURES, HIDDEN)
        self.w = torch.nn.Parameter(0.5 * torch.randn(HIDDEN, HIDDEN) / HIDDEN**0.5)
        self.readout = torch.nn.Linear(HIDDEN, CLASSES)
        self.deq = torchdeq.get_deq(f_solver=solver, b_solver=solver, ift=True, f_max_iter=60, b_max_iter=60,
                                    f_tol=1e-5, b_tol=1e-5, f_stop_mode="rel", b_stop_mode="rel")

    def forward(self, x):
        # Contractive by construction: ‖W‖_F ≤ 0.9 bounds the spectral norm.
        w = self.w * (0.9 / torch.clamp(torch.linalg.matrix_norm(self.w), min=0.9))
        c = self.inject(x)
        z_out, _ = self.deq(lambda z: torch.tanh(z @ w.T + c), torch.zeros(x.shape[0], HIDDEN))
        return self.readout(z_out[-1])


def train(solver):
    x, labels = data()
    model = Classifier(solver)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(2)
    losses = []
    for _ in range(STEPS):
        batch = torch.randint(0, x.shape[0], (64,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x[batch]), labels[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = torch.nn.functional.cross_entropy(model(x), labels).item()
    return final, losses


def test_training_with_our_broyden_matches_torchdeqs():
    deqsolve.torchdeq.register()
    theirs, their_curve = train("broyden")
    ours, our_curve = train("deqsolve_broyden")
    # It learned something (chance is log 4 = 1.39).
    assert theirs < 0.8 * their_curve[0]
    assert abs(ours - theirs) <= 0.05 * theirs, (ours, theirs)
