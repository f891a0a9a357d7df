"""autorag_hp.generators: local LLMs on the CPU (bf16 / AMX where the CPU has it, int8) and a LangChain wrapper.

Imports are lazy: ``import autorag_hp.generators`` does not import torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autorag_hp.deps import lazy_exports

from .base import Generation, Generator, Messages, Sampling

if TYPE_CHECKING:  # pragma: no cover
    from .accel import AccelerationOptions, AccelerationPlan, choose_dtype, plan_acceleration
    from .capabilities import cpu_capabilities
    from .langchain_chat import ChatLocalGenerator
    from .local import LocalGenerator, default_generator

_LAZY = {
    "LocalGenerator": ".local",
    "default_generator": ".local",
    "ChatLocalGenerator": ".langchain_chat",
    "AccelerationOptions": ".accel",
    "AccelerationPlan": ".accel",
    "plan_acceleration": ".accel",
    "choose_dtype": ".accel",
    "cpu_capabilities": ".capabilities",
}

__all__ = [
    "Generation",
    "Generator",
    "Messages",
    "Sampling",
    "LocalGenerator",
    "default_generator",
    "ChatLocalGenerator",
    "AccelerationOptions",
    "AccelerationPlan",
    "plan_acceleration",
    "choose_dtype",
    "cpu_capabilities",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
