"""autorag_hp.integrations: LangChain (:mod:`.langchain`: wrap a chain, :mod:`.langchain_feedback`: trial ids in
run metadata and rewards from callbacks) and MLflow logging (:mod:`.mlflow`).

The LangChain names load on first access, so ``import autorag_hp.integrations`` imports no langchain_core.
"""

from __future__ import annotations

from autorag_hp.deps import lazy_exports

_LAZY = {
    "tune_chain": "autorag_hp.integrations.langchain",
    "tune_factory": "autorag_hp.integrations.langchain",
    "TunedRunnable": "autorag_hp.integrations.langchain",
    "RewardCallback": "autorag_hp.integrations.langchain_feedback",
    "TRIAL_ID_KEY": "autorag_hp.integrations.langchain_feedback",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
