"""µP set-up: TinyLM in SP and µP, mup's coordinate check on tiny widths, MuTransfer sweep/transfer, bad input."""

from __future__ import annotations

import functools
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mup")

from autorag_hp.training import Float, MuTransfer  # noqa: E402
from autorag_hp.training.lm import ByteBatches, LMConfig, build_lm, load_python_docs, make_tinylm  # noqa: E402
from autorag_hp.training.mutransfer import coord_check, coord_slopes, plot_coord_check  # noqa: E402

torch.set_num_threads(1)

TEXT = (
    b"def add(a, b):\n    return a + b\n\nclass Point:\n    x: int\n    y: int\n\n"
    b"The quick brown fox jumps over the lazy dog. Python is a programming language. "
) * 200


@pytest.fixture(scope="module")
def batch():
    return next(ByteBatches(TEXT, 32, 8, seed=0))


def test_sp_and_mup_coincide_at_the_base_width(batch):
    x, _ = batch
    sp = build_lm(LMConfig(width=32, n_layers=1, seq_len=32, parametrization="sp", base_width=32), seed=5)
    mu = build_lm(LMConfig(width=32, n_layers=1, seq_len=32, parametrization="mup", base_width=32), seed=5)
    with torch.no_grad():
        assert torch.allclose(sp(x), mu(x), atol=1e-6)


def test_build_is_deterministic_and_sets_base_shapes(batch):
    cfg = LMConfig(width=128, n_layers=1, seq_len=32, base_width=32)
    a, b = build_lm(cfg, seed=1), build_lm(cfg, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert a.head.width_mult() == 4.0
    assert a.blocks[0].fc1.weight.infshape.width_mult() == 4.0  # hidden: MuAdam divides its LR by 4
    assert a.tok.weight.infshape.ninf() == 1  # embedding: vector-like


def test_coord_check_mup_is_width_stable_sp_blows_up(batch, tmp_path):
    frames, slopes = {}, {}
    for p in ("sp", "mup"):
        models = {
            w: functools.partial(
                build_lm, LMConfig(width=w, n_layers=1, seq_len=32, parametrization=p, base_width=32), seed=0
            )
            for w in (32, 64, 128, 256)
        }
        frames[p] = coord_check(models, batch, lr=1e-2, mup=p == "mup", nsteps=4)
        slopes[p] = coord_slopes(frames[p])
    # SP + Adam at a fixed LR: the logits grow ~ width^0.8 after 4 steps; µP: every module's activations
    # keep their size (log2-log2 slope within ±0.5; the readout's init-time 1/sqrt(width) decay fades)
    assert slopes["sp"]["head"] > 0.5
    assert max(slopes["sp"].values()) > 0.5
    assert all(abs(s) < 0.5 for s in slopes["mup"].values()), slopes["mup"]
    assert max(slopes["mup"].values()) < 0.15  # nothing grows with width
    png = tmp_path / "coord.png"
    plot_coord_check({"SP": frames["sp"], "µP": frames["mup"]}, str(png))
    assert png.read_bytes()[:4] == b"\x89PNG"


def _train_fn(model, opt, params, seed, steps=12):
    gen = ByteBatches(TEXT, 32, 8, seed=seed + 1)
    F = torch.nn.functional
    loss = None
    for _ in range(steps):
        x, y = next(gen)
        loss = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def _mt(**kw):
    return MuTransfer(
        functools.partial(make_tinylm, n_layers=1, seq_len=32, base_width=32), _train_fn,
        base_width=32, target_width=kw.pop("target_width", 64), **kw,
    )


def test_mutransfer_grid_sweep_and_transfer():
    mt = _mt()
    lrs = [2.0**-12, 2.0**-8, 2.0**-5]
    res = mt.sweep({"lr": lrs})
    # the known optimum of this objective: among these, too small an LR cannot learn in 12 steps
    values = {r["params"]["lr"]: r["value"] for r in res.sweep}
    assert res.best_params["lr"] == min(values, key=values.get)
    assert res.best_params["lr"] != 2.0**-12
    assert values[2.0**-12] > res.proxy_value + 0.5
    res = mt.transfer(res)
    assert res.target_width == 64 and math.isfinite(res.target_value)
    assert res.target_value < values[2.0**-12]


def test_mutransfer_optuna_sweep_with_output_mult():
    mt = _mt()
    res = mt.sweep(space={"lr": Float(2.0**-10, 2.0**-4, log=True), "output_mult": Float(0.5, 2.0)},
                   tuner="optuna", n_trials=6)
    assert set(res.best_params) == {"lr", "output_mult"}
    assert len(res.sweep) == 6
    model = mt.build(64)
    assert mt.set_output_mult(model, 2.0) == 1 and model.head.output_mult == 2.0


@pytest.mark.slow
def test_mup_best_lr_transfers_on_tiny_lm():
    """Under µP the best LR at width 32 is within one grid step of the best at width 256 (SP: it moves)."""
    data = load_python_docs(2_000_000)
    train, val = data[:-100_000], data[-100_000:]
    from autorag_hp.training.lm import train_lm

    best = {}
    for p in ("sp", "mup"):
        for w in (32, 256):
            losses = {
                e: train_lm(LMConfig(width=w, parametrization=p, base_width=32), 2.0**e, train=train, val=val,
                            steps=150, batch_size=16, seed=0).val_loss
                for e in (-11, -9, -7, -5, -3)
            }
            best[p, w] = min(losses, key=losses.get)
    assert abs(best["mup", 32] - best["mup", 256]) <= 2  # one step of this 2-wide log2 grid
    assert best["sp", 256] < best["sp", 32]  # SP's optimum moves to smaller LRs as width grows


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: _mt(target_width=16), "smaller than the base width 32"),
        (lambda: _mt(proxy_widths=[16, 32]), r"proxy widths \[16\] are smaller"),
        (lambda: _mt(optimizer="lamb"), "optimizer must be one of"),
        (lambda: _mt().build(16), "smaller than the base width"),
        (lambda: _mt().sweep({"momentum": [0.9]}), "must sweep 'lr'"),
        (lambda: _mt().sweep(None), "needs a grid"),
        (lambda: _mt().sweep(tuner="hyperband"), "tuner must be"),
        (lambda: build_lm(LMConfig(width=16, n_heads=4, base_width=32)), "smaller than the base width 32"),
        (lambda: LMConfig(width=30, n_heads=4), "multiple of n_heads"),
        (lambda: LMConfig(parametrization="ntk"), "parametrization must be one of"),
        (lambda: ByteBatches(b"abc", 32, 2), "more than seq_len"),
    ],
)
def test_mup_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()
