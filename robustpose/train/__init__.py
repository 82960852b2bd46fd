"""Training: one engine (:mod:`robustpose.train.engine`) shared by every method; the methods by name (``METHODS``).

A method class takes ``(model, config, device)`` and reads its settings dataclass (``settings_class``) from
``config.method_settings``; see :mod:`robustpose.train.method` for the hooks the engine calls.
"""

from .advmix import AdvMixConfig, AdvMixMethod
from .asda import ASDAConfig, ASDAMethod
from .config import PRESETS, DataConfig, ModelConfig, OptimConfig, TrainConfig, resolve_config
from .engine import Callbacks, TrainResult, train
from .method import Method, MethodBase
from .peng import PengAgentConfig, PengAgentMethod, PengConfig, PengMethod
from .standard import JointsMSELoss, StandardConfig, StandardMethod

METHODS: dict[str, type] = {"standard": StandardMethod, "advmix": AdvMixMethod, "peng": PengMethod,
                             "peng-agent": PengAgentMethod, "asda": ASDAMethod}

__all__ = [
    "METHODS",
    "PRESETS",
    "ASDAConfig",
    "ASDAMethod",
    "AdvMixConfig",
    "AdvMixMethod",
    "Callbacks",
    "DataConfig",
    "JointsMSELoss",
    "Method",
    "MethodBase",
    "ModelConfig",
    "OptimConfig",
    "PengAgentConfig",
    "PengAgentMethod",
    "PengConfig",
    "PengMethod",
    "StandardConfig",
    "StandardMethod",
    "TrainConfig",
    "TrainResult",
    "resolve_config",
    "train",
]
