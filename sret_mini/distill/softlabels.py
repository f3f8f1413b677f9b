"""Soft-label banks, as in Fast Knowledge Distillation (FKD; Shen and Xing, ECCV 2022).

Online distillation runs the teacher on every training batch. FKD runs it once: for each training
image it draws K random crops (box and horizontal flip, as RandomResizedCrop would), asks the
teacher for its probabilities on each crop, and stores them compactly. Training then replays stored
crops: it rebuilds each crop from its box and flip and uses the stored soft label, with no teacher
forward pass at all.

Storage per crop: the box in pixels of the original image (int16 top, left, height, width), the
flip flag, and the top-k probabilities (int16 class, float16 probability). The rest of the
probability mass is spread evenly over the other classes when a label is replayed (FKD's
"marginal smoothing"); with k = number of classes the bank is exact. One safetensors file per
dataset, read lazily (memory-mapped) so that a bank larger than memory works too.

    sret-mini softlabels --teacher resnet18 --teacher-checkpoint runs/teacher/best.pt --out bank.safetensors
    sret-mini train --soft-labels bank.safetensors
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode, RandomResizedCrop
from tqdm.auto import tqdm

from ..data.transforms import sample_seed, seeded_rng
from ..engine.files import atomic_write, hash_tensor

FORMAT = "sret_mini.softlabels/2"  # 2: with a checksum of tensors and metadata


def crop_image(image, box, flip: bool, img_size: int, mean, std) -> torch.Tensor:
    """The normalised (3, img_size, img_size) tensor of one crop: the teacher's view and the replay's."""
    top, left, height, width = (int(v) for v in box)
    view = TF.resized_crop(image, top, left, height, width, [img_size, img_size], InterpolationMode.BICUBIC)
    if flip:
        view = TF.hflip(view)
    return TF.normalize(TF.to_tensor(view), mean, std)


def sample_boxes(image, crops: int, scale, ratio, hflip: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`crops` RandomResizedCrop boxes (top, left, height, width) and flip flags for one image."""
    with seeded_rng(seed):
        boxes = torch.tensor([RandomResizedCrop.get_params(image, list(scale), list(ratio)) for _ in range(crops)])
        flips = torch.rand(crops) < hflip
    return boxes.to(torch.int16), flips.to(torch.uint8)


def expand(indices: torch.Tensor, probs: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Full distributions (..., C) from stored top-k (indices, probabilities): the rest spread evenly."""
    k = indices.shape[-1]
    probs = probs.float()
    rest = (1 - probs.sum(-1, keepdim=True)).clamp_min(0) / max(num_classes - k, 1)
    full = rest.expand(*probs.shape[:-1], num_classes).clone()
    return full.scatter_(-1, indices.long(), probs)


@torch.no_grad()
def make_bank(teacher, dataset, path, *, dataset_name: str, teacher_name: str, num_classes: int, img_size: int,
              mean, std, crops: int = 10, topk: int = 5, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip: float = 0.5,
              seed: int = 0, batch_size: int = 256, device="cpu", progress: bool = True) -> Path:  # fmt: skip
    """Run `teacher` once over `crops` random crops of every image of `dataset` and save the bank.

    `dataset` yields (PIL image, label). `teacher_name` identifies the teacher (see
    `sret_mini.distill.teacher_id`); a bank is refused later by a run with another teacher.
    """
    topk = min(topk, num_classes)
    n = len(dataset)
    boxes = torch.zeros(n, crops, 4, dtype=torch.int16)
    flips = torch.zeros(n, crops, dtype=torch.uint8)
    top_i = torch.zeros(n, crops, topk, dtype=torch.int16)
    top_p = torch.zeros(n, crops, topk, dtype=torch.float16)
    teacher.eval()
    pending = []  # (image index, crop tensors)

    def flush():
        views = torch.cat([v for _, v in pending]).to(device)
        probs = torch.softmax(teacher(views).float(), dim=-1).cpu()
        values, indices = probs.topk(topk, dim=-1)
        for j, (i, _) in enumerate(pending):
            top_p[i], top_i[i] = (
                values[j * crops : (j + 1) * crops].half(),
                indices[j * crops : (j + 1) * crops].short(),
            )
        pending.clear()

    for i in tqdm(range(n), desc="soft labels", disable=not progress, leave=False):
        image = dataset[i][0]
        boxes[i], flips[i] = sample_boxes(image, crops, scale, ratio, hflip, sample_seed(seed, 0, i))
        views = torch.stack([crop_image(image, b, bool(f), img_size, mean, std) for b, f in zip(boxes[i], flips[i])])
        pending.append((i, views))
        if len(pending) * crops >= batch_size:
            flush()
    if pending:
        flush()

    info = dict(format=FORMAT, dataset=dataset_name, num_images=n, num_classes=num_classes, img_size=img_size,
                teacher=teacher_name, crops=crops, topk=topk, scale=list(scale), ratio=list(ratio), hflip=hflip,
                mean=list(mean), std=list(std), seed=seed,
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))  # fmt: skip
    tensors = dict(boxes=boxes, flips=flips, indices=top_i, probs=top_p)
    metadata = {"info": json.dumps(info)}
    shapes = {name: list(t.shape) for name, t in tensors.items()}
    metadata["checksum"] = bank_checksum(metadata["info"], shapes, lambda name, a, b: tensors[name][a:b])
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def bank_checksum(info: str, shapes: dict[str, list[int]], rows, chunk: int = 4096) -> str:
    """SHA-256 of a bank's metadata and tensors, read `chunk` images at a time (`rows(name, a, b)`).

    A bank may be larger than memory: it is hashed in slices, as it is read.
    """
    digest = hashlib.sha256(info.encode())
    for name in sorted(shapes):
        digest.update(f"{name}:{list(shapes[name])};".encode())
        for a in range(0, shapes[name][0], chunk):
            hash_tensor(digest, rows(name, a, min(a + chunk, shapes[name][0])))
    return digest.hexdigest()


class SoftLabelBank:
    """A bank file, read lazily: `info` (what it was made for) and the crops of image i."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no soft-label bank at {self.path}: make one with `sret-mini softlabels`")
        remake = "make it again with `sret-mini softlabels`"
        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = f.metadata() or {}
                info = json.loads(meta.get("info", "{}"))
                shapes = {name: f.get_slice(name).get_shape() for name in f.keys()}
                intact = meta.get("checksum") == bank_checksum(
                    meta.get("info", ""), shapes, lambda name, a, b: f.get_slice(name)[a:b]
                )
        except (SafetensorError, OSError, ValueError) as e:  # not safetensors, or metadata that is not JSON
            raise ValueError(f"{self.path} is not a readable soft-label bank ({e}); {remake}") from e
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise ValueError(f"{self.path} is not a sret_mini soft-label bank of format {FORMAT}; {remake}")
        if not intact:
            raise ValueError(f"{self.path} is corrupted: its tensors or metadata changed since it was made; {remake}")
        n, k, top = (info.get(key) for key in ("num_images", "crops", "topk"))
        wanted = dict(boxes=[n, k, 4], flips=[n, k], indices=[n, k, top], probs=[n, k, top])
        if {name: list(shape) for name, shape in shapes.items()} != wanted:
            raise ValueError(f"{self.path}: its metadata (images {n}, crops {k}, top-{top}) does not describe its "
                             f"tensors {shapes}; {remake}")  # fmt: skip
        self.info = info
        self._file = None

    def __getstate__(self):  # DataLoader workers reopen the file themselves
        return {**self.__dict__, "_file": None}

    def crops(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(boxes (K, 4), flips (K,), top-k indices (K, k), top-k probabilities (K, k)) of image i."""
        if self._file is None:
            self._file = safe_open(str(self.path), framework="pt")
        return tuple(self._file.get_slice(name)[i] for name in ("boxes", "flips", "indices", "probs"))

    def nbytes(self) -> int:
        return self.path.stat().st_size

    def check(self, **expected) -> None:
        """Raise ValueError naming every field where the bank differs from what the run needs."""
        wrong = {k: (self.info.get(k), v) for k, v in expected.items() if v is not None and self.info.get(k) != v}
        if wrong:
            details = "; ".join(f"{k}: bank {b!r}, run {r!r}" for k, (b, r) in wrong.items())
            raise ValueError(
                f"the soft-label bank {self.path} was made for another setting ({details}). Make a bank for "
                "this run with `sret-mini softlabels` (same dataset, image size and teacher), or change the run."
            )


class SoftLabelDataset(Dataset):
    """Replays a bank: item `epoch * n + i` is `per_image` stored crops of image i with their soft labels.

    Returns (crops (m, 3, H, W), labels (m,), soft labels (m, C)); which m of the K stored crops are
    used is a function of (seed, epoch, i), so a run replays the same way after a resume.
    """

    def __init__(self, base: Dataset, bank: SoftLabelBank, per_image: int = 4, seed: int = 0):
        if per_image > bank.info["crops"]:
            raise ValueError(f"per_image={per_image} but the bank stores {bank.info['crops']} crops per image")
        self.base, self.bank, self.per_image, self.seed = base, bank, per_image, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int):
        epoch, i = divmod(int(key), len(self.base))
        image, label = self.base[i]
        boxes, flips, indices, probs = self.bank.crops(i)
        g = torch.Generator().manual_seed(sample_seed(self.seed, epoch, i))
        chosen = torch.randperm(len(boxes), generator=g)[: self.per_image]
        info = self.bank.info
        views = torch.stack([crop_image(image, boxes[c], bool(flips[c]), info["img_size"], info["mean"], info["std"])
                             for c in chosen.tolist()])  # fmt: skip
        soft = expand(indices[chosen], probs[chosen], info["num_classes"])
        return views, torch.full((self.per_image,), label), soft
