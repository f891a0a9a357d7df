"""The µTransfer sweep analysis on a hand-written table of losses: exact best LRs, transfer penalty, report."""

from __future__ import annotations

import json

from autorag_hp.training.lm_sweep import lm_params, plot_sweep, summarize, write_report


def _records():
    # loss(par, width, log2_lr): SP's optimum moves from -5 (width 32) to -8 (width 256); µP's stays at -5
    table = {
        ("sp", 32): {-9: 3.4, -8: 3.2, -7: 3.1, -6: 3.0, -5: 2.9, -4: 3.3},
        ("sp", 256): {-9: 2.8, -8: 2.7, -7: 2.75, -6: 2.9, -5: 3.1, -4: 3.6},
        ("mup", 32): {-9: 3.4, -8: 3.2, -7: 3.1, -6: 3.0, -5: 2.9, -4: 3.3},
        ("mup", 256): {-9: 3.0, -8: 2.9, -7: 2.8, -6: 2.7, -5: 2.6, -4: 2.65},
    }
    out = []
    for (par, w), curve in table.items():
        for lr, loss in curve.items():
            for seed, noise in ((0, -0.01), (1, 0.01)):  # two seeds average to the table value
                out.append({"params": {"parametrization": par, "width": w, "log2_lr": lr, "seed": seed},
                            "value": loss + noise, "seconds": w / 32.0, "error": None})
    out.append({"params": {"parametrization": "sp", "width": 32, "log2_lr": -3, "seed": 0}, "value": float("nan"),
                "seconds": 1.0, "error": "RuntimeError: diverged"})  # failed points are skipped
    return out


def test_summary_exact():
    s = summarize(_records())
    assert s["n_seeds"] == 2
    assert s["best"]["sp"][32][0] == -5 and s["best"]["sp"][256][0] == -8
    assert s["best"]["mup"][32][0] == -5 and s["best"]["mup"][256][0] == -5
    t_sp, t_mup = s["transfer"]["sp"], s["transfer"]["mup"]
    assert t_sp["max_shift_steps"] == 3 and t_mup["max_shift_steps"] == 0
    assert abs(t_sp["penalty"] - (3.1 - 2.7)) < 1e-9
    assert t_mup["penalty"] == 0.0


def test_report_and_plot(tmp_path):
    s = summarize(_records())
    plot_sweep(s, str(tmp_path / "p.png"))
    md = write_report(s, str(tmp_path), "autorag-hp mutransfer --widths 32 256", {"n_layers": 2})
    text = open(md).read()
    assert "autorag-hp mutransfer --widths 32 256" in text
    assert "| 256 |" in text and "| SP | 32 → 256 | -5 | -8 |" in text
    ratio = lm_params(256) / lm_params(32)
    assert f"{ratio:.1f}× fewer parameters" in text
    saved = json.load(open(tmp_path / "summary.json"))
    assert saved["transfer"]["mup"]["penalty"] == 0.0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_lm_params_matches_the_model():
    import pytest

    torch = pytest.importorskip("torch")
    from autorag_hp.training.lm import LMConfig, build_lm

    torch.set_num_threads(1)
    for w in (32, 64):
        m = build_lm(LMConfig(width=w, parametrization="sp"))
        assert lm_params(w) == sum(p.numel() for p in m.parameters())
