"""`cnnport collect` driven by a scripted key sequence through the app's key hook."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cnnport.apps.cli import main
from cnnport.apps.webcam import CollectConfig, Collector, HeadlessDisplay, ScriptedKeys, parse_classes
from cnnport.runtime import InputError


@pytest.fixture
def frame_folder(tmp_path, digit_frames):
    frames, _ = digit_frames
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames[:12]):
        cv2.imwrite(str(folder / f"{i:02d}.png"), frame)
    return folder


def test_scripted_keys_save_frames_into_class_folders(tmp_path, frame_folder):
    dataset = tmp_path / "dataset"
    (dataset / "cat").mkdir(parents=True)
    cv2.imwrite(str(dataset / "cat" / "old.png"), np.zeros((4, 4, 3), np.uint8))  # counts continue
    # One key per frame: 1 1 1 (a held key: a burst of 3), nothing, 2, 9 (no class 9), m, 3.
    keys = ScriptedKeys(["1", "1", "1", None, "2", "9", "m", "3"])
    config = CollectConfig(str(dataset), ("cat", "dog", "bird"), source=str(frame_folder))
    collector = Collector(config, display=HeadlessDisplay(), keys=keys)
    saved = collector.run()
    assert saved == {"cat": 3, "dog": 1, "bird": 1}
    assert collector.counts == {"cat": 4, "dog": 1, "bird": 1}
    assert sorted(p.name for p in dataset.iterdir()) == ["bird", "cat", "dog"]
    cats = sorted(p for p in (dataset / "cat").glob("cat_*.jpg"))
    assert len(cats) == 3
    images = [cv2.imread(str(p)) for p in cats]
    assert all(image.shape == (480, 640, 3) for image in images)
    assert len({image.tobytes() for image in images}) == 3  # a burst stores distinct frames
    # m turned mirroring on before the bird frame was saved.
    source = cv2.imread(str(frame_folder / "07.png"))
    bird = cv2.imread(str(next((dataset / "bird").glob("*.jpg"))))
    assert np.abs(bird.astype(int) - cv2.flip(source, 1).astype(int)).mean() < 3
    assert collector.last_rendered is not None  # the preview with counts was drawn


def test_held_key_on_one_frame_saves_it_once(tmp_path, digit_frames):
    frames, _ = digit_frames
    collector = Collector(
        CollectConfig(str(tmp_path / "d"), ("a", "b"), source="0"),
        display=HeadlessDisplay(),
        keys=ScriptedKeys(["1"] * 5),
        opener=lambda spec: _OneFrame(frames[0]),
    )
    assert collector.run() == {"a": 1, "b": 0}


class _OneFrame:
    """A camera that delivers one frame and then nothing new (no read ever fails)."""

    def __init__(self, frame):
        self.frame, self.sent = frame, False

    def isOpened(self):  # noqa: N802
        return True

    def read(self):
        if self.sent:
            import time

            time.sleep(0.01)
            return True, None
        self.sent = True
        return True, self.frame

    def release(self):
        pass

    def get(self, prop):
        return 0.0

    def set(self, prop, value):
        return False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one name"),
        ("a,b,a", "repeated: a"),
        ("a/b", "cannot be a folder name"),
        (",".join("abcdefghij"), "at most 9"),
    ],
)
def test_bad_class_lists_are_user_errors(text, message):
    with pytest.raises(InputError, match=message):
        parse_classes(text)


def test_collect_cli_reports_bad_classes(tmp_path, capsys):
    assert main(["collect", str(tmp_path), "--classes", "x,x"]) == 1
    assert capsys.readouterr().err.startswith("error: --classes names must be unique")
