"""µTransfer with the ``mup`` package: tune hyper-parameters on narrow proxies, train the wide model once.

Recipe (Yang et al., "Tensor Programs V", 2022): build the model with :class:`mup.MuReadout` as its output
layer (and ``1/d`` attention), call :func:`mup.set_base_shapes` with a base model (and a delta model that
differs in every width dimension), train with :func:`mup.MuAdam` / :func:`mup.MuSGD`. Under µP the best
learning rate (and output multiplier) found at a small width is the best at a large one.

Example:
    >>> import functools, torch
    >>> from autorag_hp.training import MuTransfer
    >>> from autorag_hp.training.lm import make_tinylm
    >>> mt = MuTransfer(functools.partial(make_tinylm, n_layers=1), base_width=32, target_width=64)
    >>> model = mt.build(64)
    >>> round(model.head.width_mult(), 1)
    2.0

:meth:`MuTransfer.sweep` tunes ``lr`` (and optionally ``output_mult``) at the proxy widths with
:class:`~autorag_hp.training.grid_search.GridTuner` or :class:`~autorag_hp.training.optuna_tuner.OptunaTuner`;
:meth:`MuTransfer.transfer` trains the target width with the result. :func:`coord_check` runs mup's
coordinate check, :func:`plot_coord_check` plots it (matplotlib, no seaborn needed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autorag_hp.deps import require

OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass
class TransferResult:
    best_params: dict
    proxy_value: float
    target_width: int
    target_value: float | None = None
    sweep: list[dict] = field(default_factory=list)


class MuTransfer:
    """Tune at ``proxy_widths`` (default: the base width), carry the best values to ``target_width``.

    Args:
        model_fn: ``model_fn(width) -> nn.Module``, built for µP (MuReadout output layer); called on the
            ``meta`` device for the base and delta shapes, so it must not depend on data.
        train_fn: ``train_fn(model, optimizer, params, seed) -> float`` trains and returns the loss to minimize
            (``params`` holds ``lr`` and any other swept value). Needed by :meth:`sweep` and :meth:`transfer`.
        base_width: the width at which µP equals the standard parametrization.
        target_width: the width to transfer to; must be >= ``base_width``.
        proxy_widths: widths to tune at (each >= ``base_width``); the objective is their mean loss.
        optimizer: ``"adam"`` (MuAdam), ``"adamw"`` (MuAdamW) or ``"sgd"`` (MuSGD).
        delta_width: a second width that tells mup which dimensions scale (default ``2 * base_width``).
    """

    def __init__(
        self,
        model_fn: Callable[[int], Any],
        train_fn: Callable[..., float] | None = None,
        *,
        base_width: int,
        target_width: int,
        proxy_widths: Sequence[int] | None = None,
        optimizer: str = "adam",
        delta_width: int | None = None,
        seeds: Sequence[int] = (0,),
    ) -> None:
        if base_width <= 0:
            raise ValueError(f"base_width must be positive, got {base_width}")
        if target_width < base_width:
            raise ValueError(
                f"target width {target_width} is smaller than the base width {base_width}: µTransfer carries "
                "hyper-parameters from narrow proxies to wider models; use a smaller base_width"
            )
        proxy_widths = list(proxy_widths or [base_width])
        bad = [w for w in proxy_widths if w < base_width]
        if bad:
            raise ValueError(f"proxy widths {bad} are smaller than the base width {base_width}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if not seeds:
            raise ValueError("seeds must not be empty")
        self.model_fn, self.train_fn = model_fn, train_fn
        self.base_width, self.target_width = base_width, target_width
        self.proxy_widths = proxy_widths
        self.delta_width = delta_width or 2 * base_width
        if self.delta_width == base_width:
            raise ValueError("delta_width must differ from base_width")
        self.optimizer = optimizer
        self.seeds = list(seeds)

    # ------------------------------------------------------------------------------ building
    def build(self, width: int, *, seed: int = 0, parametrization: str = "mup"):
        """``model_fn(width)`` with base shapes set; ``parametrization="sp"`` sets ``base=None`` (mup's SP)."""
        torch, mup = require("torch", "autorag_hp.training"), require("mup", "µTransfer")
        if width < self.base_width and parametrization == "mup":
            raise ValueError(f"width {width} is smaller than the base width {self.base_width}")
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            model = self.model_fn(width)
            if parametrization == "sp":
                return mup.set_base_shapes(model, None)
            with torch.device("meta"):
                base = self.model_fn(self.base_width)
                delta = self.model_fn(self.delta_width)
            return mup.set_base_shapes(model, base, delta=delta)
        finally:
            torch.random.set_rng_state(state)

    def make_optimizer(self, model, lr: float, *, parametrization: str = "mup", **kwargs):
        """MuAdam/MuAdamW/MuSGD (µP) or the torch optimizer (SP) over ``model.parameters()``."""
        torch, mup = require("torch", "autorag_hp.training"), require("mup", "µTransfer")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if parametrization == "mup":
            cls = {"adam": mup.MuAdam, "adamw": mup.MuAdamW, "sgd": mup.MuSGD}[self.optimizer]
        else:
            cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[self.optimizer]
        return cls(model.parameters(), lr=lr, **kwargs)

    @staticmethod
    def set_output_mult(model, output_mult: float) -> int:
        """Set ``output_mult`` on every :class:`mup.MuReadout`; return how many were set."""
        mup = require("mup", "µTransfer")
        n = 0
        for m in model.modules():
            if isinstance(m, mup.MuReadout):
                m.output_mult = float(output_mult)
                n += 1
        return n

    # ------------------------------------------------------------------------------ training
    def evaluate(self, width: int, params: Mapping[str, Any], seed: int = 0) -> float:
        """Build at ``width``, apply ``params`` (``lr``, optional ``output_mult``), train, return the loss."""
        if self.train_fn is None:
            raise ValueError("MuTransfer needs a train_fn(model, optimizer, params, seed) to evaluate")
        if "lr" not in params:
            raise ValueError(f"params must contain 'lr', got {sorted(params)}")
        model = self.build(width, seed=seed)
        if "output_mult" in params:
            self.set_output_mult(model, params["output_mult"])
        opt = self.make_optimizer(model, float(params["lr"]))
        value = float(self.train_fn(model, opt, dict(params), seed))
        return value if math.isfinite(value) else math.inf

    def proxy_loss(self, params: dict) -> float:
        """Mean loss over the proxy widths and seeds (the sweep objective; picklable with the instance)."""
        vals = [self.evaluate(w, params, seed=s) for w in self.proxy_widths for s in self.seeds]
        return sum(vals) / len(vals)

    def sweep(
        self,
        grid: Mapping[str, Sequence] | None = None,
        *,
        space: Mapping[str, Any] | None = None,
        tuner: str = "grid",
        n_trials: int = 20,
        n_jobs: int = 1,
        seed: int = 0,
        show_progress: bool = False,
    ) -> TransferResult:
        """Tune at the proxy widths: ``tuner="grid"`` over ``grid`` or ``tuner="optuna"`` over ``space``.

        ``grid`` is e.g. ``{"lr": [2**-k for k in range(4, 12)], "output_mult": [0.5, 1, 2]}``;
        ``space`` is e.g. ``{"lr": Float(1e-4, 1e-1, log=True)}``.
        """
        if tuner == "grid":
            from .grid_search import GridTuner

            if grid is None:
                raise ValueError("tuner='grid' needs a grid, e.g. {'lr': [1e-3, 3e-3, 1e-2]}")
            if "lr" not in grid:
                raise ValueError("the grid must sweep 'lr'")
            res = GridTuner(self.proxy_loss, grid, n_jobs=n_jobs).run(show_progress=show_progress, desc="µP proxy")
            return TransferResult(res.best_params, res.best_value, self.target_width, sweep=res.results)
        if tuner == "optuna":
            from .optuna_tuner import OptunaTuner

            if space is None:
                raise ValueError("tuner='optuna' needs a space, e.g. {'lr': Float(1e-4, 1e-1, log=True)}")
            if "lr" not in space:
                raise ValueError("the space must include 'lr'")
            t = OptunaTuner(self.proxy_loss, space, seed=seed)
            t.optimize(n_trials, n_jobs=1, show_progress=show_progress)
            return TransferResult(t.best_params, t.best_value, self.target_width, sweep=t.trials_table())
        raise ValueError(f"tuner must be 'grid' or 'optuna', got {tuner!r}")

    def transfer(self, result: TransferResult | Mapping[str, Any], seed: int = 0) -> TransferResult:
        """Train at ``target_width`` with the tuned values; fills ``target_value``."""
        if not isinstance(result, TransferResult):
            result = TransferResult(dict(result), math.nan, self.target_width)
        result.target_value = self.evaluate(self.target_width, result.best_params, seed=seed)
        return result

    # ------------------------------------------------------------------------------ coord check
    def coord_check(self, batch, widths: Sequence[int] | None = None, *, parametrization: str = "mup", **kwargs):
        """mup's coordinate check of this model at ``widths`` (default base, 2x, 4x); see :func:`coord_check`.

        ``parametrization="sp"`` builds with ``set_base_shapes(model, None)`` and trains with the torch optimizer.
        """
        import functools

        widths = list(widths or [self.base_width, 2 * self.base_width, 4 * self.base_width])
        models = {w: functools.partial(self.build, w, parametrization=parametrization) for w in widths}
        return coord_check(models, batch, optimizer=self.optimizer, mup=parametrization == "mup", **kwargs)


def coord_check(models: Mapping[int, Callable[[], Any]], batch, *, optimizer: str = "adam", lr: float = 1e-2,
                mup: bool = True, nsteps: int = 3, nseeds: int = 1, vocab_flatten: bool = True):
    """Run ``mup.get_coord_data`` on CPU with one fixed batch; return its pandas DataFrame.

    ``models`` maps width -> zero-argument constructor (base shapes already set). ``batch`` is ``(x, y)``;
    for sequence models with ``vocab_flatten`` the target is flattened and the output reshaped to
    ``(-1, vocab)``. Columns: width, module, t (1..nsteps), l1 (mean |coordinate| of the module's output).
    """
    torch = require("torch", "autorag_hp.training")
    from mup.coord_check import get_coord_data

    x, y = batch
    if vocab_flatten:
        y = y.reshape(-1)
    state = torch.random.get_rng_state()
    try:
        df = get_coord_data(
            dict(models), [(x, y)], optimizer=optimizer, lr=lr, mup=mup, nsteps=nsteps, nseeds=nseeds,
            cuda=False, flatten_output=vocab_flatten, show_progress=False, lossfn="xent",
        )
    finally:
        torch.random.set_rng_state(state)
    return df


def coord_slopes(df, t: int | None = None) -> dict[str, float]:
    """Per module, the log2-log2 slope of ``l1`` against width at step ``t`` (default: the last step).

    Under µP every slope should be near 0 (coordinates neither blow up nor vanish with width); under SP the
    output logits grow with width after a few steps of training.
    """
    import numpy as np

    t = int(df["t"].max()) if t is None else t
    out: dict[str, float] = {}
    sub = df[df["t"] == t].groupby(["module", "width"])["l1"].mean().reset_index()
    for module, g in sub.groupby("module"):
        g = g.sort_values("width")
        if len(g) < 2 or (g["l1"] <= 0).any():
            continue
        out[str(module)] = float(np.polyfit(np.log2(g["width"]), np.log2(g["l1"]), 1)[0])
    return out


def plot_coord_check(frames: Mapping[str, Any], path: str, *, modules: Sequence[str] | None = None,
                     title: str = "") -> None:
    """Plot coordinate checks side by side: ``frames`` maps a label (e.g. "SP", "µP") to a DataFrame.

    One row per label, one column per step t; x = width (log2), y = mean |coordinate| (log), a line per module.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(frames)
    ts = sorted({int(t) for df in frames.values() for t in df["t"].unique()})
    fig, axes = plt.subplots(len(labels), len(ts), figsize=(3.4 * len(ts), 3.0 * len(labels)), squeeze=False,
                             sharex=True)
    for i, label in enumerate(labels):
        df = frames[label]
        mods = list(modules) if modules else sorted(df["module"].unique())
        cmap = plt.get_cmap("tab20")
        for j, t in enumerate(ts):
            ax = axes[i][j]
            sub = df[df["t"] == t].groupby(["module", "width"])["l1"].mean().reset_index()
            for k, m in enumerate(mods):
                g = sub[sub["module"] == m].sort_values("width")
                if len(g):
                    ax.plot(g["width"], g["l1"], "-o", ms=2, color=cmap(k % 20), label=m)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{label}  t={t}", fontsize=9)
            if i == len(labels) - 1:
                ax.set_xlabel("width")
            if j == 0:
                ax.set_ylabel("mean |coordinate|")
    handles, names = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="center right", fontsize=6)
        fig.subplots_adjust(right=0.82)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
