"""Reports of a study without a server: read it back (:mod:`.study`), then a ``report.md`` with PNGs or a
terminal table (:mod:`.render`). Submodules load on first use (no matplotlib at import).

>>> from autorag_hp.reporting import load_study, write_report   # doctest: +SKIP
>>> write_report(load_study("sqlite:///tuning.db", "tune"), "report/")   # doctest: +SKIP
"""

from __future__ import annotations

from autorag_hp.deps import lazy_exports

_LAZY = {
    "StudyData": "autorag_hp.reporting.study",
    "load_study": "autorag_hp.reporting.study",
    "from_tuner": "autorag_hp.reporting.study",
    "write_report": "autorag_hp.reporting.render",
    "terminal": "autorag_hp.reporting.render",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
