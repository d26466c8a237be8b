"""Fixtures shared by the webcam app's and the web page's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    return train_test_split(
        digits.images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
