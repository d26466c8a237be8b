"""Training fixtures: one short real run on digits, shared by the session."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")


def quick_config(out, **overrides):
    from cnnport.train import TrainConfig

    values = {
        "data": "digits",
        "model": "lenet5",
        "epochs": 2,
        "out": str(out),
        "verbose": 0,
        "tensorboard": True,
    }
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    from cnnport.train import fit

    return fit(quick_config(tmp_path_factory.mktemp("runs") / "lenet5-digits", epochs=3))
