"""Quality bars of the image tasks, on real images that work offline: scikit-learn's digits.

The 1,797 8x8 digits are written as PNGs into class folders, and a generated
project trains on them through its folder path (``--data.source folder``) with
its defaults, in a real process, for three seeds (the training seed and the
split's). The bars (issue 13): test accuracy >= 0.95; an autoencoder's test
MSE <= 0.5 x the variance of the test images' pixels (the error of predicting
their mean grey level).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_project
from PIL import Image
from sklearn.datasets import load_digits
from task_quality import SEEDS, run_python

# Runs inside the generated project: fit, then test the last checkpoint, per seed;
# prints one JSON list, a result per seed. {package} and {data_class} are filled in below.
SCRIPT = """
import json, sys
import torch
from {package}.__main__ import main
from {package}.data import {data_class}

folder, root = sys.argv[1], sys.argv[2]
results = []
for seed in {seeds}:
    options = [
        "--data.source", "folder", "--data.path", folder, "--data.seed", str(seed),
        "--seed_everything", str(seed), "--trainer.default_root_dir", f"{{root}}/{{seed}}",
        "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.num_nodes", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    ]
    main(["fit", *options])
    (result,) = main(["test", "--ckpt_path", "last", *options])
    data = {data_class}(source="folder", path=folder, seed=seed)
    data.setup("test")
    pixels = torch.stack([data.splits["test"][i][0] for i in range(len(data.splits["test"]))])
    results.append({{**result, "seed": seed, "pixel_var": float(pixels.var())}})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """scikit-learn's digits as 8-bit grayscale PNGs in one folder per class."""
    folder = tmp_path_factory.mktemp("digits")
    bunch = load_digits()
    for index, (image, label) in enumerate(zip(bunch.images, bunch.target, strict=True)):
        path = folder / str(label) / f"{index:04d}.png"
        path.parent.mkdir(exist_ok=True)
        pixels = np.round(image / 16 * 255).astype(np.uint8)  # the digits' 0..16 as 0..255
        Image.fromarray(pixels, mode="L").save(path)
    return folder


def train_on_digits(tmp_path: Path, digits: Path, task: str, data_class: str) -> list[dict]:
    """Fit and test a fresh ``task`` project with its defaults; one result per seed."""
    project = make_project(tmp_path / "exp", task=task, logger="none").path
    script = SCRIPT.format(package="exp", data_class=data_class, seeds=SEEDS)
    return run_python(project, script, str(digits), str(tmp_path / "runs"))


def test_image_classifier_defaults_reach_95_percent_on_digits(tmp_path, digits) -> None:
    results = train_on_digits(tmp_path, digits, "image_classification", "ImageDataModule")
    assert [r["seed"] for r in results] == list(SEEDS)
    for r in results:
        assert r["test_acc"] >= 0.95, results
        assert r["test_f1"] >= 0.9, results  # macro-F1: no class left behind


def test_autoencoder_defaults_halve_the_pixel_variance_on_digits(tmp_path, digits) -> None:
    results = train_on_digits(tmp_path, digits, "autoencoder", "ManifoldDataModule")
    assert [r["seed"] for r in results] == list(SEEDS)
    for r in results:
        assert r["test_mse"] <= 0.5 * r["pixel_var"], results
