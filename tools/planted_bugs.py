"""Plant plausible bugs one at a time in a scratch copy and name the tests that catch each (``docs/testing.md``).

Usage (from the repository root; ``../shared`` beside the checkout as for the test suite)::

    python tools/planted_bugs.py            # every bug in BUGS
    python tools/planted_bugs.py 3 7        # bugs by number

The checkout is never modified: each bug is applied to a fresh copy of ``robustpose/`` in ``.mutation/planted/``
(ignored by git), the listed test files run there, and the failing tests are printed. A bug whose text is not
found in the source is reported as such (the code moved: update the entry).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation" / "planted"

MULTIPROCESS = ["tests/test_multiprocess.py", "-k", "standard and not resume and not dies"]
# (area, file, exact text, replacement, test files and pytest options)
BUGS: list[tuple[str, str, str, str, list[str]]] = [
    ("seeding", "robustpose/datasets/seeding.py", '"little")', '"big")', ["tests/test_seeding.py"]),
    ("seeding", "robustpose/datasets/seeding.py", "\\0{corruption}\\0", "\\0{corruption}", ["tests/test_seeding.py"]),
    ("OKS-NMS", "robustpose/metrics/postprocess.py", "rest[oks <= threshold]", "rest[oks < threshold]",
     ["tests/test_oks_nms.py"]),
    ("OKS-NMS", "robustpose/metrics/postprocess.py", "(areas[i] + areas[rest]) / 2", "areas[rest]",
     ["tests/test_oks_nms.py"]),
    ("OKS-NMS", "robustpose/metrics/postprocess.py", ".mean(axis=1)\n        order", ".min(axis=1)\n        order",
     ["tests/test_oks_nms.py"]),
    ("flip tables", "robustpose/datasets/keypoints.py", "(10, 15), (11, 14), (12, 13)", "(10, 15), (11, 13), (12, 14)",
     ["tests/test_flip_tables.py"]),
    ("training flip", "robustpose/train/data.py", "joints[:, 0] = width - 1 - joints[:, 0]",
     "joints[:, 0] = width - joints[:, 0]", ["tests/test_flip_tables.py"]),
    ("training flip", "robustpose/train/data.py", "                center[0] = width - 1 - center[0]\n", "",
     ["tests/test_flip_tables.py"]),
    ("DARK", "robustpose/inference/decode.py", "(hyy * gx - hxy * gy)", "(hyy * gx + hxy * gy)",
     ["tests/test_dark_decoder.py"]),
    ("DARK", "robustpose/inference/decode.py", "at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1)",
     "at(1, 1) - at(-1, 1) + at(1, -1) - at(-1, -1)", ["tests/test_dark_decoder.py"]),
    ("DARK", "robustpose/inference/decode.py", "ok = (det > 0) & (hxx < 0)", "ok = det > 0", ["tests/test_dark_decoder.py"]),
    ("checkpoint.pth", "robustpose/models/checkpoint.py", '("state_dict", "best_state_dict") if which',
     '("best_state_dict", "state_dict") if which', ["tests/test_checkpoint_pth.py"]),
    ("AdvMix step", "robustpose/train/advmix/method.py", "scale(-s.adv_weight * adv)", "scale(s.adv_weight * adv)",
     ["tests/test_advmix_step.py"]),
    ("AdvMix step", "robustpose/train/advmix/method.py", "soft = self._forward(self.teacher, images)",
     "soft = self._forward(self.teacher, mixed.detach())", ["tests/test_advmix_step.py"]),
    ("AdvMix step", "robustpose/train/advmix/method.py", "adv = self.criterion(self._forward(pose, mixed), target, weight)",
     "adv = self.criterion(self._forward(pose, self.mixed_batch(images)[2]), target, weight)",
     ["tests/test_advmix_step.py"]),
    ("GridMask", "robustpose/augment/gridmask.py", "torch.floor(d * ratio + 0.5)", "torch.round(d * ratio)",
     ["tests/test_augment_tables.py"]),
    ("GridMask", "robustpose/augment/gridmask.py", "canvas = int(1.5 * n)", "canvas = int(1.5 * n) + 1",
     ["tests/test_augment_tables.py"]),
    ("AutoAugment", "robustpose/augment/autoaugment.py", "return 0.1 * level", "return 0.09 * level",
     ["tests/test_augment_tables.py"]),
    ("AutoAugment", "robustpose/augment/autoaugment.py", 'SubPolicy("sharpness", 0.4, 7, "invert", 0.6, 8)',
     'SubPolicy("sharpness", 0.6, 7, "invert", 0.4, 8)', ["tests/test_augment_tables.py"]),
    ("verify-c seed", "robustpose/datasets/verify_c.py", 'record["seeding"].get("base_seed", 0)', "0",
     ["tests/test_verify_c_seed.py"]),
    ('ASDA generator', 'robustpose/train/asda/generator.py', '        nn.init.zeros_(self.head[2].weight)\n',
     '', ['tests/test_asda_method.py']),
    ('ASDA theta', 'robustpose/train/asda/paster.py', 'TRANSLATION_RANGE = 2.4',
     'TRANSLATION_RANGE = 3.0', ['tests/test_asda_method.py']),
    ('ASDA generator', 'robustpose/train/asda/generator.py', '1, groups=num_types)',
     '1)', ['tests/test_asda_method.py']),
    ('ASDA warp', 'robustpose/train/asda/paster.py', '    cx, cy = (w - 1) / 2, (h - 1) / 2\n',
     '    cx, cy = w / 2, h / 2\n', ['tests/test_asda_method.py']),
    ('ASDA step', 'robustpose/train/asda/method.py', 'self.gen_scaler.scale(-loss).backward()',
     'self.gen_scaler.scale(loss).backward()', ['tests/test_asda_method.py']),
    ('ASDA warp', 'robustpose/train/asda/paster.py', '    theta = theta_from(rt.reshape(b * n, 3).float())\n',
     '    theta = theta_from(rt.reshape(b * n, 3).float().detach())\n', ['tests/test_asda_method.py']),
    ('ASDA paste', 'robustpose/train/asda/paster.py', '        out = torch.where((types[:, slot] >= 0).view(b, 1, 1, 1), pasted, out)\n',
     '        out = pasted\n', ['tests/test_asda_method.py']),
    ('ASDA step', 'robustpose/train/asda/method.py', '"target": batch["target"],\n                                             "weight": batch["weight"]})',
     '"target": batch["target"],\n                                             "weight": batch["weight"] * 0.5})', ['tests/test_asda_method.py']),
    ('ASDA validation', 'robustpose/train/asda/method.py', '            self.gen_optimizer = torch.optim.Adam(',
     '            model.register_forward_pre_hook(lambda m, a, g=self.generator: (g(a[0]), None)[1])\n            self.gen_optimizer = torch.optim.Adam(', ['tests/test_asda_method.py']),
    ('ASDA resume', 'robustpose/train/asda/method.py', '            self.gen_optimizer.load_state_dict(state["gen_optimizer"])\n',
     '', ['tests/test_asda_method.py']),
    ('ASDA paster', 'robustpose/train/asda/paster.py', '        if params.half_body:\n            return False\n',
     '', ['tests/test_asda_method.py']),
    ('ASDA paster', 'robustpose/train/asda/paster.py', 'target = diag * self.pool.priors[kind] * rng.uniform(*SIZE_JITTER)',
     'target = diag * self.pool.priors[kind] * (rng.uniform(*SIZE_JITTER) * 0 + 1)', ['tests/test_asda_method.py']),
    ('ASDA step', 'robustpose/train/asda/method.py', 'if settings.stn_first\n',
     'if False\n', ['tests/test_asda_method.py']),
    ('part pool', 'robustpose/datasets/parts.py', '            self.records.append({"type": part.type, "file": file, "source": source, "box": list(part.box),',
     '            import random; file = f"{part.type}/{random.random()}.png"; write_atomic(self.out / file, data)\n            self.records.append({"type": part.type, "file": file, "source": source, "box": list(part.box),', ['tests/test_asda_parts.py']),
    ('SynthPose labels', 'robustpose/datasets/synthpose.py', '        if parts is not None:\n            labels =',
     '        if parts is not None:\n            rng.random()\n            labels =', ['tests/test_asda_parts.py']),
    ('SynthPose labels', 'robustpose/datasets/synthpose.py', 'LIP_ARM, LIP_LEG, LIP_SHOE = {1: 14, -1: 15}',
     'LIP_ARM, LIP_LEG, LIP_SHOE = {1: 15, -1: 14}', ['tests/test_asda_parts.py']),
    ('part pool', 'robustpose/datasets/parts.py', '        return load_rgb(path), scene.parts\n',
     '        return scene.image, scene.parts\n', ['tests/test_asda_parts.py']),
    ('part pool', 'robustpose/datasets/parts.py', '    if labels.shape != image.shape[:2]:\n        raise ValueError(f"{mask_path}: mask is',
     '    if False:\n        raise ValueError(f"{mask_path}: mask is', ['tests/test_asda_parts.py']),
    ('part pool', 'robustpose/datasets/parts.py', 'if area < min_area or area < filters.min_fill * w * h:',
     'if area < min_area:', ['tests/test_asda_parts.py']),
    ('ASDA provenance', 'robustpose/train/asda/method.py', 'return {"pool": self.pool.hash}',
     'return {}', ['tests/test_asda_method.py']),
    # Multi-process training (torchrun, 2 processes); the standard trainer's runs are enough to catch them.
    ("DDP rank split", "robustpose/train/engine.py", "return order[rank::world][:per_rank]", "return order[:per_rank]",
     MULTIPROCESS),
    ("DDP gradient averaging", "robustpose/train/engine.py",
     "    if world > 1:\n        model = nn.parallel.DistributedDataParallel(",
     "    if world > 99:\n        model = nn.parallel.DistributedDataParallel(", MULTIPROCESS),
    ("sync batch norm", "robustpose/train/distributed.py", "return _AllReduceSum.apply(grad)", "return grad",
     MULTIPROCESS),
    ("DDP logged loss", "robustpose/train/distributed.py", "    t /= dist.get_world_size()\n", "", MULTIPROCESS),
]


def prepare() -> None:
    if WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "repo").mkdir(parents=True)
    shutil.copytree(ROOT / "tests", WORK / "repo" / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    (WORK / "shared").symlink_to(ROOT.parent / "shared")  # conftest reads <repo>/../shared


def run(number: int) -> tuple[str, list[str]]:
    area, rel, old, new, tests = BUGS[number]
    repo = WORK / "repo"
    if (repo / "robustpose").exists():
        shutil.rmtree(repo / "robustpose")
    shutil.copytree(ROOT / "robustpose", repo / "robustpose", ignore=shutil.ignore_patterns("__pycache__"))
    path = repo / rel
    text = path.read_text()
    if text.count(old) != 1:
        return "NOT FOUND", []
    path.write_text(text.replace(old, new))
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           "-rf", *tests], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    failed = sorted({m.group(1) for m in re.finditer(r"^FAILED (\S+)", proc.stdout, re.M)})
    return ("caught" if proc.returncode else "MISSED"), failed


def main(argv: list[str]) -> int:
    numbers = [int(a) for a in argv] or list(range(len(BUGS)))
    prepare()
    missed = 0
    for n in numbers:
        area, rel, old, new, _ = BUGS[n]
        verdict, failed = run(n)
        missed += verdict != "caught"
        print(f"{n:2d} [{area}] {rel}: {old.strip()!r} -> {new.strip()!r}: {verdict}")
        for name in failed:
            print(f"      {name}")
    shutil.rmtree(WORK / "repo" / "robustpose", ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
