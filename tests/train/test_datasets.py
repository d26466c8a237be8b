import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cnnport.runtime import InputSpec, ResizeSpec, preprocess
from cnnport.train import DatasetError, load_dataset

SPEC = InputSpec(height=16, width=16)
RESIZE = ResizeSpec(interpolation="area")


def load(source, **kwargs):
    options = {"val_split": 0.2, "test_split": 0.2, "seed": 0}
    options.update(kwargs)
    return load_dataset(str(source), SPEC, RESIZE, **options)


def write_images(folder, n, color, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        image = np.full((20, 24, 3), color, np.uint8) + rng.integers(0, 20, (20, 24, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{i}.png"), image)


def test_digits_is_offline_split_and_stratified():
    spec = InputSpec(height=32, width=32, channels=1, color="GRAY")
    splits = load_dataset("digits", spec, RESIZE, val_split=0.1, test_split=0.2, seed=0)
    assert splits.labels == tuple("0123456789")
    assert len(splits.train) + len(splits.val) + len(splits.test) == 1797
    assert splits.train.x.shape[1:] == (32, 32, 1)
    assert splits.train.x.dtype == np.uint8
    assert abs(len(splits.test) - 359) <= 1
    assert set(np.bincount(splits.test.y)) <= {35, 36, 37}  # each class about 10% of the test split
    assert not splits.flip_ok
    again = load_dataset("digits", spec, RESIZE, val_split=0.1, test_split=0.2, seed=0)
    np.testing.assert_array_equal(again.test.y, splits.test.y)


def test_folder_with_bad_files_trains_and_lists_them(tmp_path):
    root = tmp_path / "data"
    write_images(root / "cat", 6, (0, 0, 200))
    write_images(root / "dog", 6, (200, 0, 0), seed=1)
    good_jpeg = cv2.imencode(".jpg", np.zeros((30, 30, 3), np.uint8))[1].tobytes()
    (root / "cat" / "garbage.png").write_bytes(b"\x00garbage" * 50)
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "dog" / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".hidden.png").write_bytes(b"ignored")
    cv2.imwrite(str(root / "cat" / "gray.png"), np.full((20, 20), 90, np.uint8))
    cv2.imwrite(str(root / "cat" / "rgba.png"), np.full((20, 20, 4), 120, np.uint8))
    cv2.imwrite(str(root / "dog" / "deep.png"), np.full((20, 20, 3), 40000, np.uint16))
    splits = load(root)
    assert splits.labels == ("cat", "dog")
    assert len(splits.train) + len(splits.val) + len(splits.test) == 15  # 12 + gray, rgba, 16-bit
    reasons = {name.split("/")[-1]: reason for name, reason in splits.skipped}
    assert set(reasons) == {"garbage.png", "empty.jpg", "truncated.jpg", "notes.txt"}
    assert "truncated" in reasons["truncated.jpg"]
    assert "not an image file" in reasons["notes.txt"]


def test_folder_images_equal_the_engine_preprocessing(tmp_path):
    root = tmp_path / "data"
    write_images(root / "a", 5, (10, 50, 90))
    write_images(root / "b", 5, (90, 50, 10), seed=3)
    splits = load(root)
    every = np.concatenate([splits.train.x, splits.val.x, splits.test.x])
    expected = preprocess(
        sorted((root / "a").glob("*.png")) + sorted((root / "b").glob("*.png")), SPEC, RESIZE
    )
    # same pixels, whatever the split order
    assert sorted(map(bytes, every)) == sorted(map(bytes, expected))


def test_user_supplied_train_val_test_folders(tmp_path):
    root = tmp_path / "data"
    for part, n in (("train", 8), ("val", 3), ("test", 4)):
        write_images(root / part / "x", n, (0, 0, 0))
        write_images(root / part / "y", n, (255, 255, 255))
    splits = load(root)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 6, 8)


@pytest.mark.parametrize(
    "names",
    [
        ("train", "validation", None),  # the Keras tutorials' cats_and_dogs_filtered
        ("train", "valid", "test"),  # Roboflow's exports
        ("training_set", None, "test_set"),  # Kaggle's cats and dogs
        ("Train", "Val", "Test"),
    ],
)
def test_split_folders_as_data_sets_name_them(tmp_path, names):
    # Each of these was read wrongly: validation/ and valid/ were ignored (the validation
    # split carved from train/ instead), and training_set/ test_set/ became two classes.
    root = tmp_path / "data"
    sizes = {"train": 10, "val": 4, "test": 6}
    for split, name in zip(sizes, names, strict=True):
        if name is not None:
            write_images(root / name / "cats", sizes[split], (0, 0, 0))
            write_images(root / name / "dogs", sizes[split], (255, 255, 255))
    splits = load(root)
    assert splits.labels == ("cats", "dogs")
    got = {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}
    total = sum(2 * sizes[split] for split, name in zip(sizes, names, strict=True) if name is not None)
    assert sum(got.values()) == total
    for split, name in zip(sizes, names, strict=True):
        if name is not None and split != "train":
            assert got[split] == 2 * sizes[split]


def test_split_folder_layouts_that_cannot_be_read_are_errors_and_extras_are_listed(tmp_path):
    root = tmp_path / "data"
    for name in ("val", "validation"):
        write_images(root / name / "cats", 3, (0, 0, 0))
    with pytest.raises(DatasetError, match="'val' and 'validation': two folders for one split"):
        load(root)
    root = tmp_path / "no-train"
    write_images(root / "validation" / "cats", 3, (0, 0, 0))
    write_images(root / "test" / "cats", 3, (0, 0, 0))
    with pytest.raises(
        DatasetError, match="but no training split; accepted: ROOT/<class>/<images>, or ROOT/"
    ):
        load(root)
    # A folder beside the splits is not read, and said so; a macOS zip's __MACOSX is neither.
    root = tmp_path / "extra"
    for name in ("train", "extra"):
        write_images(root / name / "cats", 10, (0, 0, 0))
        write_images(root / name / "dogs", 10, (255, 255, 255))
    write_images(root / "__MACOSX" / "train", 2, (0, 0, 0))
    splits = load(root)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 20
    assert [(path.rsplit("/", 1)[-1], "not a split folder" in why) for path, why in splits.skipped] == [
        ("extra", True)
    ]


def test_a_class_named_like_a_split_is_a_class(tmp_path):
    # vehicles: train, car, bus. A folder of images (no class folders in it) is a class.
    root = tmp_path / "vehicles"
    for i, name in enumerate(("train", "car", "bus")):
        write_images(root / name, 8, (80 * i, 0, 0))
    write_images(root / "__MACOSX" / "train", 2, (0, 0, 0))
    assert load(root).labels == ("bus", "car", "train")


def test_only_train_folder_gets_val_and_test_carved_out(tmp_path):
    root = tmp_path / "data"
    write_images(root / "train" / "x", 10, (0, 0, 0))
    write_images(root / "train" / "y", 10, (255, 255, 255))
    splits = load(root)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 20
    assert set(splits.test.y) == {0, 1}


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, "no class subfolders"),
        ({"only": 5}, "single class"),
        ({"a": 5, "b": 0}, "holds no readable images"),
        ({"a": 2, "b": 2}, "too few"),
    ],
)
def test_unusable_folders_are_clear_errors(tmp_path, layout, message):
    root = tmp_path / "data"
    root.mkdir()
    for name, n in layout.items():
        (root / name).mkdir()
        write_images(root / name, n, (0, 0, 0))
    with pytest.raises(DatasetError, match=message):
        load(root)


def test_unknown_name_and_missing_folder():
    with pytest.raises(DatasetError, match="Did you mean 'digits'"):
        load("digit")
    with pytest.raises(DatasetError, match="not found"):
        load("no/such/folder")


def test_an_archive_or_a_file_is_not_a_folder(tmp_path):
    # A downloaded cats_and_dogs_filtered.zip was "not found" though it was right there.
    for name, hint in (
        ("cats_and_dogs_filtered.zip", r"is a file, not a folder; unpack it first \(python -m zipfile -e"),
        ("flowers.tgz", r"unpack it first \(mkdir data && tar -xf"),
        ("labels.csv", r"is a file, not a folder; accepted: a folder of class subfolders"),
    ):
        (tmp_path / name).write_bytes(b"x")
        with pytest.raises(DatasetError, match=hint):
            load(tmp_path / name)


def test_keras_dataset_offline_is_a_clear_error(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DatasetError, match=r"needs internet once.*--data digits"):
        load("mnist")


def test_memory_mapped_cache_feeds_the_same_batches(tmp_path):
    from cnnport.train.datasets import Split
    from cnnport.train.pipeline import cache_split, make_dataset

    rng = np.random.default_rng(0)
    split = Split(
        rng.integers(0, 256, (50, 8, 8, 1), dtype=np.uint8), rng.integers(0, 3, 50).astype(np.int64)
    )
    mapped = cache_split(split, "train", "mmap", tmp_path)
    assert isinstance(mapped.x, np.memmap)
    assert (tmp_path / "train_x.npy").is_file()
    in_memory = list(make_dataset(split, 3, batch_size=16, training=False))
    from_disk = list(make_dataset(mapped, 3, batch_size=16, training=False))
    assert len(from_disk) == len(in_memory) == 4
    for (xa, ya), (xb, yb) in zip(in_memory, from_disk, strict=True):
        np.testing.assert_array_equal(np.asarray(xa), np.asarray(xb))
        np.testing.assert_array_equal(np.asarray(ya), np.asarray(yb))
    shuffled = np.concatenate(
        [np.asarray(y).argmax(1) for _, y in make_dataset(mapped, 3, batch_size=16, training=True)]
    )
    assert sorted(shuffled) == sorted(split.y)


def test_every_image_suffix_predict_reads_is_read_for_training(tmp_path):
    """One list of suffixes (runtime.IMAGE_SUFFIXES): train used to skip the .tif/.tiff
    files that predict and the webcam's folder source accept."""
    from cnnport.runtime import IMAGE_SUFFIXES

    assert {".tif", ".tiff"} <= set(IMAGE_SUFFIXES)
    root = tmp_path / "data"
    for label, color in (("a", (10, 50, 90)), ("b", (90, 50, 10))):
        (root / label).mkdir(parents=True)
        for i, suffix in enumerate(IMAGE_SUFFIXES):
            image = np.full((20, 24, 3), color, np.uint8)
            assert cv2.imwrite(str(root / label / f"{i}{suffix}"), image), suffix
    splits = load(root)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 2 * len(IMAGE_SUFFIXES)
    assert not splits.skipped
