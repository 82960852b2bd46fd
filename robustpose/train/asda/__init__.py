"""ASDA (Bin et al., ECCV 2020): adversarial semantic data augmentation. Body parts from a part pool
(:mod:`robustpose.datasets.parts`) are pasted into the training crops at a rotation and translation an adversarial
generator chooses per part type; the targets stay the person's. See ``docs/asda.md``.

Plug it into the engine with ``train(config, functools.partial(ASDAMethod, settings=ASDAConfig(pool=..., init=...)))``.
"""

from .generator import PartGenerator
from .method import ASDAConfig, ASDAMethod
from .paster import PartPaster, paste, select_rt, soft_mask, theta_from, warp

__all__ = ["ASDAConfig", "ASDAMethod", "PartGenerator", "PartPaster", "paste", "select_rt", "soft_mask",
           "theta_from", "warp"]
