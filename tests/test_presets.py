"""The GPU presets against the official configurations (reference notes: models_and_inference.md sections 1, 3, 6;
HRNet's ``w32_256x192_adam_lr1e-3.yaml`` and SimpleBaseline's ``res50_256x192_d256x3_adam_lr1e-3.yaml``)."""

import pytest

from robustpose.train import PRESETS, resolve_config

PATHS = {"data": {"train_ann": "a.json", "train_images": "i", "val_ann": "b.json", "val_images": "i"}, "out": "o"}

# preset: dataset, arch, input (h, w), heatmap (h, w), epochs, milestones, (scale, rotation, half-body)
OFFICIAL = {
    "coco-res50-256x192": ("coco", "simplebaseline_res50", [256, 192], [64, 48], 140, [90, 120], (0.35, 45.0, 0.3)),
    "coco-hrnet-w32-256x192": ("coco", "hrnet_w32", [256, 192], [64, 48], 210, [170, 200], (0.35, 45.0, 0.3)),
    "mpii-res50-256x256": ("mpii", "simplebaseline_res50", [256, 256], [64, 64], 140, [90, 120], (0.25, 30.0, 0.0)),
    "mpii-hrnet-w32-256x256": ("mpii", "hrnet_w32", [256, 256], [64, 64], 210, [170, 200], (0.25, 30.0, 0.0)),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_gpu_presets_follow_the_official_configs(name):
    dataset, arch, size, heatmap, epochs, milestones, augment = OFFICIAL[name]
    c = resolve_config(PRESETS[name], PATHS)
    assert (c.data.dataset, c.model.arch, c.data.input_size, c.data.heatmap_size) == (dataset, arch, size, heatmap)
    assert (c.epochs, c.optim.milestones, c.optim.gamma, c.optim.lr, c.optim.weight_decay) == \
        (epochs, milestones, 0.1, 1e-3, 0.0)
    assert c.batch_size == 32 and c.data.sigma == 2.0 and c.data.flip and c.flip_test
    assert c.amp is False  # the official code trains in full precision; --amp is ours
    a = c.augment_params()
    assert (a["scale_factor"], a["rotation_factor"], a["half_body_prob"]) == augment


def test_every_preset_is_tested_here():
    assert set(PRESETS) == {"cpu-synth", *OFFICIAL}
