"""The incremental additive model behind ``additive_lucb2``: weighted ridge regression on one-hot factor columns.

Columns: one per (parameter, value) — the main effects — and, for each parameter pair the data has let in, one
per (value, value) cell of the pair. A configuration ``c`` touches ``K`` columns (``K`` = parameters + pairs),
its one-hot row ``x_c``. With the hyper-estimates fixed (``σ²`` within-configuration noise, ``τ²`` residual
variance, ``ρ²`` prior variance of a main effect, ``ρ²_pair`` of a pair cell, ``μ₀`` the centre), the posterior
of the effects is

    A = Λ⁻¹ + Σ_c w_c x_c x_cᵀ,   b = Σ_c w_c x_c (ȳ_c − μ₀),   θ = A⁻¹ b,   Cov θ = A⁻¹,
    w_c = 1 / (σ²/m_c + τ²)   (m_c distinct questions of c; ȳ_c their mean)

so a configuration's prediction is ``pred(c) = μ₀ + x_cᵀθ`` with variance ``v(c) = x_cᵀA⁻¹x_c + τ²``. A new
sample of ``c`` changes ``w_c`` by ``Δw`` and ``b`` on ``c``'s ``K`` columns only: ``A⁻¹`` follows by
Sherman–Morrison, ``A⁻¹ ← A⁻¹ − Δw u uᵀ / (1 + Δw x_cᵀu)`` with ``u = A⁻¹x_c`` (the sum of ``K`` columns),
``O(D²)`` for ``D`` columns — independent of the number of configurations. :meth:`AdditiveModel.rebuild`
recomputes ``A⁻¹`` directly (``O(n D² + D³)``), used when the hyper-estimates change.

Top configurations without scoring the space: parameters joined by a pair term form one *group* whose value
is the tuple of their values; the prediction is a sum of per-group tables ``e_g``. :meth:`candidates` returns
the product of every group's ``T`` best values (``T`` as large as keeps the product ≤ ``limit``), ranked by
``e_g`` and by ``e_g + β·s_g`` with ``s_g[v] = sqrt(x_gᵀA⁻¹x_g)`` (by the triangle inequality
``sqrt(v(c) − τ²) ≤ Σ_g s_g[c_g]``, so this is an additive upper bound of the exact bound). When the space
has ≤ ``limit`` configurations that is the whole space (exact); beyond, it holds the model's exact top ``T``.
"""

from __future__ import annotations

import numpy as np


class AdditiveModel:
    """Posterior of the additive (+ selected pairs) model; see the module docstring."""

    def __init__(self, radix: list[int], pairs: list[tuple[int, int]], *, sigma2: float, tau2: float, rho2: float,
                 rho2_pair: float, mu0: float, digit_table: np.ndarray | None = None):
        self.radix = [int(r) for r in radix]
        self._table = digit_table  # (P, size) digits of every configuration, shared by the policy's models
        self._coltab: np.ndarray | None = None  # (K, size) columns of every configuration (from the table)
        self.pairs = [tuple(p) for p in pairs]
        self.sigma2, self.tau2, self.mu0 = float(sigma2), float(tau2), float(mu0)
        off, prior = [], []
        d = 0
        for r in self.radix:
            off.append(d)
            d += r
            prior.append(np.full(r, rho2))
        self._poff = []
        for a, b in self.pairs:
            self._poff.append(d)
            d += self.radix[a] * self.radix[b]
            prior.append(np.full(self.radix[a] * self.radix[b], rho2_pair))
        self._off = off
        self.D = d
        self.prior = np.concatenate(prior)
        self.S = np.diag(self.prior)  # A⁻¹
        self.b = np.zeros(d)
        self._w: dict[int, tuple[float, float]] = {}  # config index -> (w_c, w_c (ȳ_c − μ₀))
        self._theta: np.ndarray | None = None
        self._groups = _groups(len(self.radix), self.pairs)
        self._all: np.ndarray | None = None
        self._T: dict[int, list[tuple[np.ndarray, np.ndarray, int]]] = {}

    # --- columns -------------------------------------------------------------------------------------------
    def digits(self, idx: np.ndarray) -> np.ndarray:
        """(P, n) value indices of configuration indices ``idx`` (mixed radix, first parameter slowest)."""
        if self._table is not None:
            return self._table[:, idx]
        return np.array(np.unravel_index(np.asarray(idx, dtype=np.int64), self.radix)).reshape(len(self.radix), -1)

    def cols_of_digits(self, dg: np.ndarray) -> np.ndarray:
        """(K, n) column indices of configurations given by their digits."""
        rows = [dg[p] + self._off[p] for p in range(len(self.radix))]
        for (a, b), o in zip(self.pairs, self._poff):
            rows.append(o + dg[a] * self.radix[b] + dg[b])
        return np.array(rows)

    def cols(self, idx: np.ndarray) -> np.ndarray:
        if self._table is not None:
            if self._coltab is None:
                self._coltab = self.cols_of_digits(self._table)
            return np.take(self._coltab, idx, axis=1)
        return self.cols_of_digits(self.digits(idx))

    # --- fitting -------------------------------------------------------------------------------------------
    def weight(self, m: float) -> float:
        return 1.0 / (self.sigma2 / m + self.tau2) if m > 0 else 0.0

    def rebuild(self, idx: np.ndarray, m: np.ndarray, ybar: np.ndarray) -> None:
        """Refit from the tried configurations ``idx`` with ``m`` samples and means ``ybar`` (direct inverse).

        ``A`` is accumulated cell by cell (``K²`` column pairs per configuration: ``O(n K² + D³)``), never through
        a dense ``n × D`` design matrix."""
        idx = np.asarray(idx, dtype=np.int64)
        w = self.sigma2 / np.maximum(m, 1e-300) + self.tau2
        w = np.where(m > 0, 1.0 / w, 0.0)
        wy = w * (ybar - self.mu0)
        C = self.cols(idx)
        K, D = C.shape[0], self.D
        pair_cells = (C[:, None, :] * D + C[None, :, :]).ravel()
        A = np.bincount(pair_cells, np.tile(w, K * K), D * D).astype(float).reshape(D, D)  # (int when empty)
        A[np.diag_indices(D)] += 1.0 / self.prior
        self.S = np.linalg.inv(A)
        self.S = 0.5 * (self.S + self.S.T)
        self.b = np.bincount(C.ravel(), np.tile(wy, K), D).astype(float)
        self._w = dict(zip(idx.tolist(), zip(w.tolist(), wy.tolist())))
        self._theta = None

    def observe(self, i: int, m: float, ybar: float) -> None:
        """Configuration ``i`` now has ``m`` samples of mean ``ybar``: rank-one update of ``A⁻¹`` and ``b``."""
        w_old, wy_old = self._w.get(i, (0.0, 0.0))
        w_new = self.weight(m)
        wy_new = w_new * (ybar - self.mu0)
        cols = self._cols_one(i)
        dw = w_new - w_old
        if dw != 0.0:
            u = self.S[:, cols].sum(axis=1)
            s = float(u[cols].sum())
            self.S -= (dw / (1.0 + dw * s)) * np.outer(u, u)
        self.b[cols] += wy_new - wy_old  # a configuration's columns are distinct
        self._w[i] = (w_new, wy_new)
        self._theta = None

    def _cols_one(self, i: int) -> list[int]:
        dg = []
        for r in reversed(self.radix):
            i, d = divmod(i, r)
            dg.append(d)
        dg.reverse()
        cols = [o + d for o, d in zip(self._off, dg)]
        for (a, b), o in zip(self.pairs, self._poff):
            cols.append(o + dg[a] * self.radix[b] + dg[b])
        return cols

    @property
    def theta(self) -> np.ndarray:
        if self._theta is None:
            self._theta = self.S @ self.b
        return self._theta

    # --- prediction ----------------------------------------------------------------------------------------
    def predict_cols(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pred, v) for configurations given by their (K, n) columns: ``μ₀ + xᵀθ`` and ``xᵀA⁻¹x + τ²``."""
        th, S = self.theta, self.S.reshape(-1)  # flat: a 1-d gather per column pair
        pred = self.mu0 + _row_sum(th, C)
        K, D = C.shape[0], self.D
        var = np.full(C.shape[1], self.tau2)
        for a in range(K):
            row = C[a] * D
            var += S[row + C[a]]
            for b in range(a + 1, K):
                var += 2.0 * S[row + C[b]]
        return pred, np.maximum(var, 1e-12)

    def mean_only(self, idx: np.ndarray) -> np.ndarray:
        """``pred`` alone (``K`` gathers, no variance)."""
        return self.mu0 + _row_sum(self.theta, self.cols(idx))

    def predict_all(self) -> tuple[np.ndarray, np.ndarray]:
        """(pred, v) of every configuration (their columns cached: for small spaces)."""
        if self._all is None:
            self._all = self.cols(np.arange(int(np.prod(self.radix))))
        return self.predict_cols(self._all)

    def predict(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.predict_cols(self.cols(idx))

    def residual_pairs(self, idx: np.ndarray, resid: np.ndarray, var: np.ndarray, cap: int) -> list[tuple[float, int, int, int]]:
        """For every parameter pair not in the model (cells ≤ ``cap``): (X², cells, a, b) of the residuals grouped
        by the pair's cells, ``X² = Σ_cells (Σ r/v)² / Σ 1/v`` (χ² with about cells − n_a − n_b + 1 degrees of
        freedom when the pair adds nothing)."""
        dg = self.digits(idx)
        out = []
        have = set(self.pairs)
        P = len(self.radix)
        for a in range(P):
            for b in range(a + 1, P):
                na, nb = self.radix[a], self.radix[b]
                if (a, b) in have or na * nb > cap or na == 1 or nb == 1:
                    continue
                cell = dg[a] * nb + dg[b]
                num = np.bincount(cell, resid / var, na * nb)
                den = np.bincount(cell, 1.0 / var, na * nb)
                used = den > 0
                x2 = float((num[used] ** 2 / den[used]).sum())
                out.append((x2, int(used.sum()), a, b))
        return out

    # --- search --------------------------------------------------------------------------------------------
    def candidates(self, beta: float, limit: int = 256) -> np.ndarray:
        """Configuration indices: every group's ``T`` best values by ``e_g`` and by ``e_g + β s_g``, combined."""
        th, S = self.theta, self.S
        by_mean, by_bound = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        for C, contrib, t in self._group_tables(limit):
            if C.shape[0] == 1:  # a parameter alone: its values' own effects and variances
                e, s2 = np.take(th, C[0]), np.take(S.reshape(-1), C[0] * (self.D + 1))
            else:
                e = _row_sum(th, C)
                s2 = np.zeros(e.size)
                for a in range(C.shape[0]):
                    s2 += S[C[a], C[a]]
                    for b in range(a + 1, C.shape[0]):
                        s2 += 2.0 * S[C[a], C[b]]
            if t < e.size:
                by_mean = np.add.outer(by_mean, contrib[np.argsort(-e, kind="stable")[:t]]).ravel()
                bound = e + beta * np.sqrt(np.maximum(s2, 0.0))
                by_bound = np.add.outer(by_bound, contrib[np.argsort(-bound, kind="stable")[:t]]).ravel()
            else:
                by_mean = np.add.outer(by_mean, contrib).ravel()
                by_bound = np.add.outer(by_bound, contrib).ravel()
        return np.concatenate([by_mean, by_bound])  # may repeat a configuration

    def _group_tables(self, limit: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """Per group: its values' (K_g, V_g) columns, their share of the flat configuration index, and T_g."""
        cached = self._T.get(limit)
        if cached is not None:
            return cached
        strides = np.cumprod([1] + self.radix[::-1])[:-1][::-1]
        tabs = []
        for g in self._groups:
            sizes = [self.radix[p] for p in g]
            V = int(np.prod(sizes))
            dg = np.zeros((len(self.radix), V), dtype=np.int64)
            dg[list(g)] = np.array(np.unravel_index(np.arange(V), sizes)).reshape(len(g), V)
            tabs.append((self._group_cols(g, dg), (dg * strides[:, None]).sum(axis=0), V))
        T = _per_group(limit, [V for _, _, V in tabs])
        out = [(C, contrib, t) for (C, contrib, _), t in zip(tabs, T)]
        self._T[limit] = out
        return out

    def _group_cols(self, g: tuple[int, ...], dg: np.ndarray) -> np.ndarray:
        rows = [dg[p] + self._off[p] for p in g]
        for (a, b), o in zip(self.pairs, self._poff):
            if a in g and b in g:
                rows.append(o + dg[a] * self.radix[b] + dg[b])
        return np.array(rows)


def _row_sum(vec: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``vec[C].sum(axis=0)`` for (K, n) columns ``C``, row by row in order (the same sums, 1-d gathers)."""
    out = np.take(vec, C[0])
    for k in range(1, C.shape[0]):
        out += np.take(vec, C[k])
    return out


def _groups(P: int, pairs: list[tuple[int, int]]) -> list[tuple[int, ...]]:
    """Connected components of the parameters under the pairs (each a group of the search)."""
    parent = list(range(P))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    comps: dict[int, list[int]] = {}
    for p in range(P):
        comps.setdefault(find(p), []).append(p)
    return [tuple(c) for c in sorted(comps.values())]


def _per_group(limit: int, sizes: list[int]) -> list[int]:
    """The largest per-group counts T_g ≤ size_g, grown one at a time round-robin, with Π T_g ≤ limit."""
    T = [1] * len(sizes)
    grown = True
    while grown:
        grown = False
        for g in range(len(sizes)):
            if T[g] < sizes[g] and np.prod(T) // T[g] * (T[g] + 1) <= limit:
                T[g] += 1
                grown = True
    return T
