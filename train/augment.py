"""Augmentation: registered policies, per-setting overrides, and batch mixing.

Augmentation runs in the training input pipeline only; it is never a layer of the
saved model, so the exported graph has no random ops.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cnnport.runtime import Registry

from .config import TrainConfig

__all__ = ["POLICIES", "Augmentation", "augmentation_for", "augmentation_layers", "mix_batch", "policy_name"]


@dataclass(frozen=True)
class Augmentation:
    """Random transforms of a training image; 0 or False turns one off."""

    flip: bool = False
    rotation: float = 0.0  # fraction of a full turn
    zoom: float = 0.0
    translation: float = 0.0
    contrast: float = 0.0
    brightness: float = 0.0
    hue: float = 0.0  # the largest shift either way, as a fraction of the color wheel
    saturation: float = 0.0  # saturation scaled by 1 - saturation .. 1 + saturation
    fill: str = "constant"  # beyond the edges after rotation, zoom, translation: black, or reflect

    @property
    def active(self) -> bool:
        return any(getattr(self, name) for name in (*_RANDOM, "flip"))

    def describe(self) -> str:
        """The transforms applied, for the log: 'flip no, rotation 0.08, zoom 0.2, ...'."""
        if not self.active:
            return "none"
        settings = [f"flip {'horizontal' if self.flip else 'no'}"]
        for name in _RANDOM:
            if getattr(self, name):
                settings.append(f"{name} {getattr(self, name):g}")
        if self.fill != "constant" and any((self.rotation, self.zoom, self.translation)):
            settings.append(f"fill {self.fill}")
        return ", ".join(settings)


_RANDOM = ("rotation", "zoom", "translation", "contrast", "brightness", "hue", "saturation")


POLICIES: Registry[Augmentation] = Registry("augmentation policy")
POLICIES.add("none", Augmentation())
POLICIES.add("light", Augmentation(flip=True, rotation=0.03, zoom=0.1, translation=0.1))
POLICIES.add(
    "strong", Augmentation(flip=True, rotation=0.08, zoom=0.2, translation=0.15, contrast=0.3, brightness=0.2)
)


def augmentation_for(cfg: TrainConfig, *, flip_ok: bool, folder: bool) -> Augmentation:
    """The policy named by --augment, with individual flags overriding its settings.

    ``auto`` is light for built-in sets and strong for folders (small custom sets
    need more). Flipping stays off unless --flip asks for it for data whose classes
    are not mirror-symmetric (digits) and for folders, where cnnport cannot know
    (a flipped arrow, letter or digit is another class).
    """
    policy = POLICIES.get(policy_name(cfg, folder=folder))
    if not flip_ok or folder:
        policy = replace(policy, flip=False)
    overrides = {key: getattr(cfg, key) for key in ("flip", *_RANDOM) if getattr(cfg, key) is not None}
    return replace(policy, fill=cfg.fill, **overrides)


def policy_name(cfg: TrainConfig, *, folder: bool) -> str:
    """The policy --augment names, with ``auto`` resolved (strong for folders, else light)."""
    return cfg.augment if cfg.augment != "auto" else ("strong" if folder else "light")


def augmentation_layers(aug: Augmentation, seed: int):
    """A keras.Sequential of random layers for ``aug``, or None when it does nothing."""
    if not aug.active:
        return None
    import keras

    layers = keras.layers
    steps = []
    if aug.flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed))
    if aug.rotation:
        steps.append(layers.RandomRotation(aug.rotation, fill_mode=aug.fill, seed=seed + 1))
    if aug.zoom:
        steps.append(layers.RandomZoom(aug.zoom, fill_mode=aug.fill, seed=seed + 2))
    if aug.translation:
        steps.append(
            layers.RandomTranslation(aug.translation, aug.translation, fill_mode=aug.fill, seed=seed + 3)
        )
    if aug.contrast:
        steps.append(layers.RandomContrast(aug.contrast, value_range=(0, 255), seed=seed + 4))
    if aug.brightness:
        steps.append(layers.RandomBrightness(aug.brightness, value_range=(0, 255), seed=seed + 5))
    if aug.hue:
        # Keras shifts the hue by up to factor / 2 of the wheel, either way.
        steps.append(layers.RandomHue(min(1.0, 2 * aug.hue), value_range=(0, 255), seed=seed + 6))
    if aug.saturation:
        # Its value_range only clips the saturation channel, which is 0..1 whatever the
        # pixels' range: (0, 255) let saturation pass 1 and gave negative pixels.
        steps.append(
            layers.RandomSaturation(_saturation_factor(aug.saturation), value_range=(0, 1), seed=seed + 7)
        )
    return keras.Sequential(steps, name="augmentation")


def _saturation_factor(amount: float) -> tuple[float, float]:
    """Keras' RandomSaturation factor range for a saturation scaled by 1 - amount .. 1 + amount.

    Keras scales saturation by f / (1 - f) for f drawn from its factor range, and a single
    float f means the range (0, f): it would only ever desaturate (0.3 scales by 0 to 0.43).
    """
    low, high = 1 - amount, 1 + amount
    return low / (1 + low), high / (1 + high)


def mix_batch(images, labels, kind: str, alpha: float, seed: int):
    """Mixup or CutMix on one batch of float images and one-hot labels (TensorFlow ops)."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    perm = tf.random.shuffle(tf.range(batch), seed=seed)
    gamma_a = tf.random.gamma([], alpha, seed=seed)
    gamma_b = tf.random.gamma([], alpha, seed=seed + 1)
    lam = gamma_a / (gamma_a + gamma_b)
    other_x, other_y = tf.gather(images, perm), tf.gather(labels, perm)
    if kind == "mixup":
        return lam * images + (1 - lam) * other_x, lam * labels + (1 - lam) * other_y
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    cut = tf.sqrt(1.0 - lam)
    cut_h = tf.cast(tf.cast(height, tf.float32) * cut, tf.int32)
    cut_w = tf.cast(tf.cast(width, tf.float32) * cut, tf.int32)
    top = tf.random.uniform([], 0, height - cut_h + 1, dtype=tf.int32, seed=seed + 2)
    left = tf.random.uniform([], 0, width - cut_w + 1, dtype=tf.int32, seed=seed + 3)
    rows = tf.logical_and(tf.range(height) >= top, tf.range(height) < top + cut_h)
    cols = tf.logical_and(tf.range(width) >= left, tf.range(width) < left + cut_w)
    box = tf.cast(tf.logical_and(rows[:, None], cols[None, :]), images.dtype)[None, :, :, None]
    mixed = images * (1 - box) + other_x * box
    # The label weight is the area actually pasted, which can differ from lam after rounding.
    area = tf.cast(cut_h * cut_w, tf.float32) / tf.cast(height * width, tf.float32)
    return mixed, (1 - area) * labels + area * other_y
