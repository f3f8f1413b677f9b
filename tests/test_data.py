"""Dataset loaders on fixtures in the real formats; augmentation and batching that can be replayed."""

import random
import time
import urllib.error

import numpy as np
import pytest
import torch
from data_fixtures import IMAGENETTE_WNIDS, write_cifar, write_image_folder, write_imagenette
from torchvision.datasets import CIFAR10, CIFAR100, Imagenette

from sret_mini.data import (
    DatasetUnavailable,
    EpochBatchSampler,
    EpochSeededDataset,
    build_transform,
    load_dataset,
)
from sret_mini.data.folders import IMAGENET100_LIST, read_class_list


def test_digits_has_a_fixed_stratified_split():
    spec = load_dataset("digits")
    assert (len(spec.train), len(spec.test), spec.num_classes) == (1437, 360, 10)
    counts = np.bincount(spec.test.targets)
    assert counts.min() >= 35 and counts.max() <= 37  # 20% of each digit's ~180 images
    assert load_dataset("digits").test.targets == spec.test.targets


def test_digits_images_are_rgb_at_the_requested_size():
    image, label = load_dataset("digits", img_size=24).train[0]
    assert image.mode == "RGB" and image.size == (24, 24) and 0 <= label < 10


@pytest.mark.parametrize("name, cls", [("cifar10", CIFAR10), ("cifar100", CIFAR100)])
def test_cifar_loads_from_its_real_on_disk_format(tmp_path, monkeypatch, name, cls):
    written = write_cifar(tmp_path, name)
    monkeypatch.setattr(cls, "train_list", written["train"])  # the fixture's checksums
    monkeypatch.setattr(cls, "test_list", written["test"])
    monkeypatch.setattr(cls, "meta", written["meta"])
    spec = load_dataset(name, root=tmp_path, download=False)
    n_files = 5 if name == "cifar10" else 1
    assert (len(spec.train), len(spec.test)) == (6 * n_files, 6)
    assert spec.num_classes == (10 if name == "cifar10" else 100) and spec.img_size == 32
    image, label = spec.test[2]
    data, labels = written["images"]["test"][0]
    # channel-major rows of 3072 bytes become 32x32 RGB images
    assert np.array_equal(np.asarray(image), data[2].reshape(3, 32, 32).transpose(1, 2, 0))
    assert label == labels[2]


def test_a_corrupted_cifar_file_is_refused(tmp_path, monkeypatch):
    written = write_cifar(tmp_path, "cifar10")
    monkeypatch.setattr(CIFAR10, "train_list", written["train"])
    monkeypatch.setattr(CIFAR10, "test_list", written["test"])
    monkeypatch.setattr(CIFAR10, "meta", written["meta"])
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1] + b"\0")
    with pytest.raises(DatasetUnavailable, match="cifar-10-batches-py"):
        load_dataset("cifar10", root=tmp_path, download=False)


def test_missing_dataset_fails_fast_naming_the_path_and_the_fetch_command(tmp_path):
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailable) as error:
        load_dataset("cifar100", root=tmp_path, download=False)
    assert time.perf_counter() - start < 5
    assert str(tmp_path / "cifar-100-python") in str(error.value)
    assert f"sret-mini download cifar100 --root {tmp_path}" in str(error.value)


@pytest.mark.parametrize("name, cls", [("cifar10", CIFAR10), ("imagenette", Imagenette)])
def test_a_download_without_network_is_explained(tmp_path, monkeypatch, name, cls):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(cls, "download" if name == "cifar10" else "_download", offline)
    with pytest.raises(DatasetUnavailable, match=rf"could not be downloaded.*sret-mini download {name}"):
        load_dataset(name, root=tmp_path, download=True)


def test_imagenette_loads_from_its_archive_layout(tmp_path):
    write_imagenette(tmp_path, "160px")
    spec = load_dataset("imagenette", root=tmp_path, download=False)
    assert spec.num_classes == 10 and len(spec.train) == 10 and spec.img_size == 160
    assert spec.classes[0] == "tench"  # n01440764, sorted first


def test_any_imagenet_style_folder_loads(tmp_path):
    for split in ("train", "val"):
        write_image_folder(tmp_path / split, ["cat", "dog", "emu"], ext="png")
    spec = load_dataset("imagefolder", root=tmp_path)
    assert spec.classes == ["cat", "dog", "emu"] and len(spec.train) == 6 and spec.img_size == 224


def test_image_folder_without_val_says_what_layout_it_expects(tmp_path):
    write_image_folder(tmp_path / "train", ["cat"])
    with pytest.raises(DatasetUnavailable, match=r"val.*<root>/train/<class>"):
        load_dataset("imagefolder", root=tmp_path)


def test_the_imagenet100_class_list_holds_100_wordnet_ids():
    classes = read_class_list(IMAGENET100_LIST)
    assert len(classes) == len(set(classes)) == 100
    assert all(c.startswith("n") and len(c) == 9 for c in classes)


def test_imagenet100_keeps_only_the_listed_classes(tmp_path):
    listed = read_class_list(IMAGENET100_LIST)[:3]
    class_list = tmp_path / "three.txt"
    class_list.write_text("# three classes\n" + "\n".join(listed) + "\n")
    for split in ("train", "val"):
        write_image_folder(tmp_path / "imagenet" / split, [*listed, IMAGENETTE_WNIDS[0]], per_class=1)
    spec = load_dataset("imagenet100", root=tmp_path / "imagenet", class_list=str(class_list))
    assert spec.classes == sorted(listed) and len(spec.train) == 3


def test_imagenet100_names_the_classes_it_cannot_find(tmp_path):
    for split in ("train", "val"):
        write_image_folder(tmp_path / split, ["n01440764"], per_class=1)
    with pytest.raises(DatasetUnavailable, match=r"lacks 100 of the 100 listed classes"):
        load_dataset("imagenet100", root=tmp_path)


def test_unknown_dataset_or_option():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match=r"digits does not take option\(s\) \['n_train'\]"):
        load_dataset("digits", n_train=10)


def test_training_augmentation_is_timms():
    tf = build_transform(32, True, (0.5,) * 3, (0.5,) * 3, auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25)
    names = [type(t).__name__ for t in tf.transforms]
    assert names[0] == "RandomResizedCropAndInterpolation"
    assert "RandAugment" in names and names[-1] == "RandomErasing"


def test_augmentation_is_a_function_of_seed_epoch_and_index():
    spec = load_dataset("digits")
    tf = spec.transform(True, auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.5)
    a, b = EpochSeededDataset(spec.train, tf, seed=1), EpochSeededDataset(spec.train, tf, seed=1)
    n = len(a)
    assert torch.equal(a[7][0], b[7][0])  # any copy (a worker, a resumed run) makes the same sample
    assert not torch.equal(a[7][0], a[n + 7][0])  # the next epoch augments it differently
    assert not torch.equal(a[7][0], EpochSeededDataset(spec.train, tf, seed=2)[7][0])


def test_augmenting_a_sample_leaves_the_global_generators_alone():
    spec = load_dataset("digits")
    data = EpochSeededDataset(spec.train, spec.transform(True), seed=0)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    data[3]
    assert torch.equal(before[0], torch.get_rng_state())
    assert np.array_equal(before[1], np.random.get_state()[1]) and before[2] == random.getstate()


def test_ranks_share_each_global_batch_exactly():
    single = EpochBatchSampler(100, 8, shuffle=True, drop_last=True, seed=3)
    ranks = [EpochBatchSampler(100, 8, shuffle=True, drop_last=True, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for s in (single, *ranks):
        s.set_epoch(4)
    for whole, part0, part1 in zip(single, *ranks):
        assert sorted(whole) == sorted(part0 + part1) and len(part0) == len(part1) == 4
    assert len(single) == 12  # 100 // 8, the last incomplete batch dropped


def test_batches_depend_on_the_epoch_and_resume_mid_epoch():
    sampler = EpochBatchSampler(50, 10, shuffle=True, drop_last=True, seed=0)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    sampler.set_epoch(2)
    assert list(sampler) != epoch1
    assert all(k // 50 == 2 for batch in sampler for k in batch)  # keys carry the epoch
    sampler.set_epoch(1, start_step=3)
    assert list(sampler) == epoch1[3:]


def test_the_global_batch_must_split_evenly_over_processes():
    with pytest.raises(ValueError, match="divisible by the number of processes 3"):
        EpochBatchSampler(100, 8, shuffle=True, drop_last=True, world_size=3)


def test_randaugment_posterize_to_zero_bits_gives_a_black_image_instead_of_an_error():
    # "inc1" maps magnitude 10 to a posterize keeping 0 bits, which Pillow 13 refuses: the recipes'
    # "rand-m9-mstd0.5-inc1" draws it (about one image in a few hundred), and a run must not stop there
    from PIL import Image

    from sret_mini.data.transforms import build_transform

    transform = build_transform(16, True, (0.5,) * 3, (0.5,) * 3, auto_augment="rand-m10-mstd0-inc1")
    ops = [op for step in transform.transforms for op in getattr(step, "ops", ())]
    (posterize,) = [op for op in ops if op.name == "PosterizeIncreasing"]
    posterize.prob = 1.0
    image = Image.fromarray(np.random.default_rng(0).integers(1, 256, (8, 8, 3), dtype=np.uint8))
    assert np.asarray(posterize(image)).max() == 0
    assert np.asarray(posterize(image)).shape == (8, 8, 3)


def test_the_recipes_randaugment_uses_the_safe_posterize():
    from sret_mini import RECIPES
    from sret_mini.data import transforms

    for name in ("cifar", "imagenet"):
        transform = transforms.build_transform(
            32, True, (0.5,) * 3, (0.5,) * 3, auto_augment=RECIPES[name]["auto_augment"]
        )
        ops = [op for step in transform.transforms for op in getattr(step, "ops", ())]
        posterizes = [op for op in ops if op.name.startswith("Posterize")]
        assert posterizes and all(op.aug_fn is transforms.posterize for op in posterizes)
