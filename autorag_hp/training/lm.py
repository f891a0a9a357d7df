"""A tiny byte-level transformer language model in standard (SP) or maximal-update (µP) parametrization.

It is the model of the µTransfer demonstration (``autorag-hp mutransfer``) and of the µP tests: small enough
to train in seconds on a CPU, built the way the ``mup`` package wants a transformer built.

µP differences from SP (Yang et al., "Tensor Programs V", 2022, and mup's README):

* the output layer is a :class:`mup.MuReadout` (its logits are divided by ``width / base_width``),
  zero-initialised;
* attention logits are scaled by ``1/d_head`` instead of ``1/sqrt(d_head)`` (times ``sqrt(base d_head)`` so
  that both parametrizations agree at the base width), and the query projection is zero-initialised;
* hidden (matrix-like) weights get Adam learning rates divided by the width multiplier: that is what
  :func:`mup.MuAdam` does once :func:`mup.set_base_shapes` has run.

Example:
    >>> import torch
    >>> from autorag_hp.training.lm import TinyLM, LMConfig
    >>> m = TinyLM(LMConfig(width=32, parametrization="sp"))
    >>> m(torch.zeros(2, 16, dtype=torch.long)).shape
    torch.Size([2, 16, 256])
"""

from __future__ import annotations

import glob
import math
import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from autorag_hp.deps import require

PARAMETRIZATIONS = ("sp", "mup")


@dataclass(frozen=True)
class LMConfig:
    """Shape and parametrization of :class:`TinyLM`. ``width`` is d_model; heads are fixed, so d_head grows."""

    width: int = 64
    n_layers: int = 2
    n_heads: int = 4
    ffn_mult: int = 4
    vocab: int = 256
    seq_len: int = 64
    parametrization: str = "mup"
    base_width: int = 32  # the width at which µP and SP coincide (µP attention scale, readout multiplier)
    output_mult: float = 1.0
    zero_init: bool = False  # µP only: zero-initialise the readout and query (slower start on short runs)

    def __post_init__(self) -> None:
        if self.parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}, got {self.parametrization!r}")
        if self.width <= 0 or self.n_layers <= 0 or self.n_heads <= 0:
            raise ValueError("width, n_layers and n_heads must be positive")
        if self.width % self.n_heads:
            raise ValueError(f"width {self.width} must be a multiple of n_heads {self.n_heads}")
        if self.base_width % self.n_heads:
            raise ValueError(f"base_width {self.base_width} must be a multiple of n_heads {self.n_heads}")


def _build_classes():
    """Define the nn.Module classes on first use, so importing this module does not import torch."""
    torch = require("torch", "autorag_hp.training")
    nn = torch.nn
    F = torch.nn.functional

    class Block(nn.Module):
        def __init__(self, cfg: LMConfig):
            super().__init__()
            d = cfg.width
            self.cfg = cfg
            self.ln1 = nn.LayerNorm(d)
            self.q = nn.Linear(d, d)
            self.k = nn.Linear(d, d)
            self.v = nn.Linear(d, d)
            self.o = nn.Linear(d, d)
            self.ln2 = nn.LayerNorm(d)
            self.fc1 = nn.Linear(d, cfg.ffn_mult * d)
            self.fc2 = nn.Linear(cfg.ffn_mult * d, d)
            d_head = d // cfg.n_heads
            if cfg.parametrization == "mup":
                base_d_head = cfg.base_width // cfg.n_heads
                self.attn_scale = math.sqrt(base_d_head) / d_head  # 1/d_head, equal to SP at base width
            else:
                self.attn_scale = 1.0 / math.sqrt(d_head)

        def forward(self, x):
            b, t, d = x.shape
            h = self.cfg.n_heads
            y = self.ln1(x)
            q = self.q(y).view(b, t, h, d // h).transpose(1, 2)
            k = self.k(y).view(b, t, h, d // h).transpose(1, 2)
            v = self.v(y).view(b, t, h, d // h).transpose(1, 2)
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.attn_scale)
            x = x + self.o(att.transpose(1, 2).reshape(b, t, d))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class TinyLM(nn.Module):
        def __init__(self, cfg: LMConfig):
            super().__init__()
            self.cfg = cfg
            d = cfg.width
            self.tok = nn.Embedding(cfg.vocab, d)
            self.pos = nn.Embedding(cfg.seq_len, d)
            self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
            self.ln_f = nn.LayerNorm(d)
            if cfg.parametrization == "mup":
                mup = require("mup", "µTransfer")
                self.head = mup.MuReadout(
                    d, cfg.vocab, readout_zero_init=cfg.zero_init, output_mult=cfg.output_mult
                )
                if cfg.zero_init:
                    for blk in self.blocks:
                        nn.init.zeros_(blk.q.weight)
                        nn.init.zeros_(blk.q.bias)
            else:
                self.head = nn.Linear(d, cfg.vocab)
            # Embeddings: unit variance in both (the "input weights" of µP keep a constant scale).
            nn.init.normal_(self.tok.weight, std=1.0)
            nn.init.normal_(self.pos.weight, std=1.0)

        def forward(self, idx):
            t = idx.shape[1]
            x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.ln_f(x))

    return Block, TinyLM


_CLASSES: dict[str, Any] = {}


def __getattr__(name: str):  # lazy class export: `from autorag_hp.training.lm import TinyLM`
    if name in ("TinyLM", "Block"):
        if not _CLASSES:
            block, tiny = _build_classes()
            _CLASSES.update(Block=block, TinyLM=tiny)
        return _CLASSES[name]
    raise AttributeError(name)


def make_tinylm(width: int, **config) -> Any:
    """A µP-ready :class:`TinyLM` at ``width`` without base shapes: the ``model_fn`` for :class:`MuTransfer`."""
    config.setdefault("parametrization", "mup")
    return __getattr__("TinyLM")(LMConfig(width=width, **config))


def build_lm(cfg: LMConfig, base_width: int | None = None, seed: int = 0):
    """Build a :class:`TinyLM`; under µP also set its base shapes (base and delta models at ``base_width``).

    The parameters are initialised from ``torch.Generator`` seeded with ``seed`` (through the global
    seed, restored afterwards) so two builds with the same seed are identical.
    """
    torch = require("torch", "autorag_hp.training")
    tiny = __getattr__("TinyLM")
    base_width = cfg.base_width if base_width is None else base_width
    if cfg.width < base_width:
        raise ValueError(f"width {cfg.width} is smaller than the base width {base_width}; µP extrapolates up")
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = tiny(cfg)
        if cfg.parametrization == "mup":
            mup = require("mup", "µTransfer")
            # base and delta shapes on the meta device: no memory, no RNG consumption
            with torch.device("meta"):
                base = tiny(replace(cfg, width=base_width))
                delta = tiny(replace(cfg, width=base_width * 2))
            mup.set_base_shapes(model, base, delta=delta)
    finally:
        torch.random.set_rng_state(state)
    return model


def make_optimizer(model, lr: float, parametrization: str, optimizer: str = "adam", weight_decay: float = 0.0):
    """Torch Adam/AdamW/SGD under SP, mup's MuAdam/MuAdamW/MuSGD under µP."""
    torch = require("torch", "autorag_hp.training")
    if parametrization == "mup":
        mup = require("mup", "µTransfer")
        table = {"adam": mup.MuAdam, "adamw": mup.MuAdamW, "sgd": mup.MuSGD}
    else:
        table = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    if optimizer not in table:
        raise ValueError(f"optimizer must be one of {sorted(table)}, got {optimizer!r}")
    return table[optimizer](model.parameters(), lr=lr, weight_decay=weight_decay)


# ----------------------------------------------------------------------------------------------- data


def load_python_docs(max_bytes: int | None = None, root: str | os.PathLike | None = None) -> bytes:
    """Text of the Python 3.11 documentation as UTF-8 bytes: the training corpus of the µTransfer demo.

    By default (``root=None``) it is the corpus bundled with the package
    (:func:`autorag_hp.rag.data.load_bundled_corpus` ``("python_docs")``: all 497 sources, markup lightly
    removed, FAQ sections without their question headings), documents in id order, joined by newlines, so it
    is the same on every machine and needs nothing installed. ``root``: a Sphinx ``_sources`` folder (e.g.
    Debian's ``/usr/share/doc/python3.11/html/_sources`` from ``python3.11-doc``) to read the raw ``*.rst.txt``
    files instead, in sorted order; that is the corpus ``eval/results/mutransfer`` was computed on.
    ``max_bytes``: keep only the first ``max_bytes`` bytes.

    >>> len(load_python_docs(1000))
    1000
    """
    if root is None:
        from autorag_hp.rag.data import load_bundled_corpus

        chunks, total = [], 0
        for doc in load_bundled_corpus("python_docs"):
            data = doc.text.encode("utf-8")
            chunks.append(data)
            total += len(data) + 1
            if max_bytes is not None and total >= max_bytes:
                break
        out = b"\n".join(chunks)
        return out if max_bytes is None else out[:max_bytes]
    files = sorted(glob.glob(os.path.join(os.fspath(root), "**", "*.rst.txt"), recursive=True))
    if not files:
        raise FileNotFoundError(
            f"no *.rst.txt under {os.fspath(root)!r}: pass the Sphinx _sources folder of the Python docs "
            "(Debian: `apt-get install -y python3.11-doc`, then /usr/share/doc/python3.11/html/_sources), "
            "or root=None for the bundled corpus"
        )
    chunks, total = [], 0
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        chunks.append(data)
        total += len(data)
        if max_bytes is not None and total >= max_bytes:
            break
    out = b"\n".join(chunks)
    return out if max_bytes is None else out[:max_bytes]


class ByteBatches:
    """Random (input, target) windows from a byte string; owns its generator (``seed``)."""

    def __init__(self, data: bytes, seq_len: int, batch_size: int, seed: int = 0):
        torch = require("torch", "autorag_hp.training")
        if len(data) <= seq_len + 1:
            raise ValueError(f"need more than seq_len+1={seq_len + 1} bytes of text, got {len(data)}")
        self.data = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
        self.seq_len, self.batch_size = seq_len, batch_size
        self.gen = torch.Generator().manual_seed(seed)

    def __iter__(self):
        return self

    def __next__(self):
        torch = require("torch", "autorag_hp.training")
        ix = torch.randint(len(self.data) - self.seq_len - 1, (self.batch_size,), generator=self.gen)
        offs = torch.arange(self.seq_len)
        x = self.data[ix[:, None] + offs]
        y = self.data[ix[:, None] + offs + 1]
        return x, y


@dataclass(frozen=True)
class TrainResult:
    train_loss: float  # mean of the last 10 % of steps
    val_loss: float
    diverged: bool
    steps: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def train_lm(
    cfg: LMConfig,
    lr: float,
    *,
    train: bytes,
    val: bytes,
    steps: int = 200,
    batch_size: int = 16,
    seed: int = 0,
    optimizer: str = "adam",
    warmup: float = 0.1,
    val_batches: int = 8,
    threads: int | None = 1,
    report=None,
) -> TrainResult:
    """Train one :class:`TinyLM` for ``steps`` steps; return training and validation loss (nats/byte).

    Linear warm-up over ``warmup`` of the steps, then cosine decay to 10 %. A non-finite loss stops the run
    and marks it diverged (its loss is reported as ``ln 256``, the loss of a uniform guess, or worse).
    ``report(step, loss)`` is called every 10 % of the steps (an Optuna pruning hook may raise from it).
    """
    import time

    torch = require("torch", "autorag_hp.training")
    if threads:
        torch.set_num_threads(threads)
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    t0 = time.perf_counter()
    model = build_lm(cfg, seed=seed)
    opt = make_optimizer(model, lr, cfg.parametrization, optimizer)
    base_lrs = [g["lr"] for g in opt.param_groups]
    n_warm = max(1, int(warmup * steps))
    batches = ByteBatches(train, cfg.seq_len, batch_size, seed=seed + 1)
    F = torch.nn.functional
    losses: list[float] = []
    uniform = math.log(cfg.vocab)
    diverged = False
    for step in range(steps):
        if step < n_warm:
            mult = (step + 1) / n_warm
        else:
            prog = (step - n_warm) / max(1, steps - n_warm)
            mult = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog))
        for g, base in zip(opt.param_groups, base_lrs):
            g["lr"] = base * mult
        x, y = next(batches)
        loss = F.cross_entropy(model(x).reshape(-1, cfg.vocab), y.reshape(-1))
        if not torch.isfinite(loss) or loss.item() > 3 * uniform:
            diverged = True
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if report is not None and (step + 1) % max(1, steps // 10) == 0:
            report(step + 1, sum(losses[-10:]) / len(losses[-10:]))
    if diverged:
        return TrainResult(uniform, uniform, True, len(losses), time.perf_counter() - t0)
    tail = losses[-max(1, steps // 10):]
    vb = ByteBatches(val, cfg.seq_len, batch_size, seed=12345)
    model.eval()
    with torch.no_grad():
        vl = sum(
            F.cross_entropy(model(x).reshape(-1, cfg.vocab), y.reshape(-1)).item()
            for x, y in (next(vb) for _ in range(val_batches))
        ) / val_batches
    if not math.isfinite(vl):
        return TrainResult(uniform, uniform, True, len(losses), time.perf_counter() - t0)
    return TrainResult(sum(tail) / len(tail), vl, False, steps, time.perf_counter() - t0)
