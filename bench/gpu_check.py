"""One command that measures on a CUDA GPU what the project has never measured there.

    PYTHONPATH=. python3 bench/gpu_check.py                    # on the GPU machine: about 8 minutes (an estimate)
    python bench/gpu_check.py --dry-run --results-dir /tmp/x   # the same code paths on the CPU, tiny, ~1 minute
    python bench/gpu_check.py --parts torchrun chapters        # only some parts (e.g. to rerun a failed one)

The parts, in order, each in a process of its own, so that one failing is reported and the rest still run:

1. speed: bench/speed.py, bf16, eager and torch.compile'd, for SReT-T (sliced and not), DeiT-Tiny and PiT-Ti;
   its compiled measurements are compiled in parallel first (speed.py --warm-compile-cache).
2. depth_memory: bench/depth_memory.py on sret_deep100 and sret_deep1000 (100 and 1000 layers).
3. torchrun: `torchrun --standalone --nproc_per_node 1 -m sret_mini train` on the generated shapes data, through
   DistributedDataParallel and NCCL: the exit code, the backend in DDP's log, the updates recorded in last.pt.
4. chapters: a few optimizer steps of every chapter's colab-profile training (chapter_table() below), on generated
   data where the chapter would download a dataset: seconds per step after warm-up, peak GPU memory, and the
   full colab-profile run time that implies on this GPU.

speed-<device>.json and depth_memory-<device>.json are saved by their scripts, gpu_check-<device>.json (parts,
torchrun, chapters) by this one, all in --results-dir (default bench/results). The summary at the end reads the
goals from the saved files. Exits 1 if any part failed or did not run.

--dry-run: everything on the CPU (CUDA hidden from every process) at tiny sizes, gloo instead of NCCL, no compile.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import gc
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # sret_mini from this checkout (not installed there), and common

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import RESULTS, save  # noqa: E402
from common import timed as seconds_per_call  # noqa: E402

import sret_mini  # noqa: E402
from sret_mini import RECIPES, TrainConfig  # noqa: E402
from sret_mini.book import recursion, reparam_lab, slicing, training  # noqa: E402

PARTS = ("speed", "depth_memory", "torchrun", "chapters")
SPEED_MODELS = ["sret_t", "sret_t_noslice", "deit_tiny_patch16_224", "pit_ti_224"]  # the dry run: the first three
CIFAR10_TRAIN, IMAGENETTE_TRAIN = 50_000, 9_469  # training images of the datasets the chapters download
TORCHRUN_SIZES = {False: (128, 10, 15), True: (8, 3, 4)}  # dry run -> (batch, steps per epoch, stop after)

# ---------------------------------------------------------------------------------------------
# The chapters' colab-profile trainings. "train": a sret_mini.train(TrainConfig(**config)) call,
# `runs` times (seeds) over `train_images` images; "loop": a training loop of `full_steps` steps on a
# fixed random batch (profiled, for chapter 9). Each follows the chapter's cell, named by a marker (the
# chapter's one code cell that contains it): its settings are read from the chapters' cells as the colab
# profile sets them (chapter_settings), its recipe from the chapter's helper in sret_mini.book, so a
# changed chapter changes the check. tests/test_gpu_check.py checks that every cell named still trains.

BOOK = ROOT / "book"
TEACHER, BANK = "<chapter 5's teacher checkpoint>", "<chapter 5's soft-label bank>"  # made by earlier entries
DIGITS_TRAIN = 1_437
RUN_OWN = {"data_dir", "download", "stop_after_steps", "progress", "out", "seed"}  # run_train sets these itself
KNOWN = dict(RECIPES=RECIPES, TrainConfig=TrainConfig, dict=dict)  # what a setting may be computed from


def chapter_cell(chapter: str, cell: int | str) -> str:
    """The source of a chapter's code cell: `cell` is its number, or a marker found in that one code cell only."""
    cells = json.loads((BOOK / f"{chapter}.ipynb").read_text(encoding="utf-8"))["cells"]
    if isinstance(cell, int):
        return "".join(cells[cell]["source"])
    found = ["".join(c["source"]) for c in cells if c["cell_type"] == "code" and cell in "".join(c["source"])]
    if len(found) != 1:
        raise LookupError(f"{chapter}: {len(found)} code cells contain {cell!r}; the marker must name one")
    return found[0]


class Settings(dict):
    """A cell's settings by name; a missing one says which cell it was expected in."""

    def __init__(self, where: str, values: dict, ambiguous: set):
        super().__init__(values)
        self.where, self.ambiguous = where, ambiguous

    def __missing__(self, name):
        why = "sets it to different values" if name in self.ambiguous else "sets no value for it that can be read"
        raise KeyError(f"{self.where} {why}: {name!r} (update bench/gpu_check.py to follow the chapter)")

    def take(self, *names: str) -> dict:
        return {name: self[name] for name in names}


def colab_only(tree: ast.AST) -> ast.AST:
    """`tree` with every `env.pick(smoke=..., book=..., colab=c, ...)` replaced by `c`."""

    class Colab(ast.NodeTransformer):
        def visit_Call(self, node):
            if ast.unparse(node.func) == "env.pick":
                return self.visit(next(k.value for k in node.keywords if k.arg == "colab"))
            return self.generic_visit(node)

    return Colab().visit(tree)


UNREAD = object()  # a value that cannot be read without running the chapter


def in_order(node: ast.AST, in_function: bool = False):
    """(node, whether it is inside a function's body) for `node` and everything in it, in the source's order."""
    yield node, in_function
    for child in ast.iter_child_nodes(node):
        yield from in_order(child, in_function or isinstance(node, (ast.FunctionDef, ast.Lambda)))


def cell_settings(sources: list[str], where: str = "the cells") -> Settings:
    """What cells set in the colab profile: the names they bind, in order (a later binding wins, as when the
    chapter runs), and the last cell's keyword arguments (`epochs=20`) and dict entries (`"epochs": 20`).

    A value is read without running the cells: evaluated from literals, `env.pick(...)` (its colab value), the
    names the cells bound before it and :data:`KNOWN`; a value that needs anything else is left out, and so
    are the names bound inside a function.
    """
    names, values, ambiguous = dict(KNOWN), {}, set()

    def read(node):
        try:
            return eval(compile(ast.Expression(node), where, "eval"), {"__builtins__": {}}, dict(names))
        except Exception:
            return UNREAD

    def note(name, value):
        if value is UNREAD or name in ambiguous:
            return
        if name in values and values[name] != value:
            ambiguous.add(name)
            del values[name]
        else:
            values[name] = value

    for i, source in enumerate(sources):
        last = i == len(sources) - 1
        for node, in_function in in_order(colab_only(ast.parse(source))):
            if isinstance(node, ast.Assign) and not in_function and (value := read(node.value)) is not UNREAD:
                for target in node.targets:
                    pairs = zip(target.elts, value) if isinstance(target, ast.Tuple) else [(target, value)]
                    names.update((t.id, v) for t, v in pairs if isinstance(t, ast.Name))
            elif last and isinstance(node, ast.keyword) and node.arg:
                note(node.arg, read(node.value))
            elif last and isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        note(key.value, read(value))
    bound = {k: v for k, v in names.items() if k not in KNOWN}
    return Settings(where, {**bound, **values}, ambiguous)


def chapter_settings(chapter: str, *cells: str) -> Settings:
    """The colab-profile settings of a chapter's cells (markers, in the chapter's order): see cell_settings."""
    return cell_settings([chapter_cell(chapter, c) for c in cells], f"{chapter}'s cell with {cells[-1]!r}")


def config_of(cfg: TrainConfig) -> dict:
    """A chapter's TrainConfig as an entry's config: every field but those run_train sets itself."""
    return {k: v for k, v in asdict(cfg).items() if k not in RUN_OWN}


def recursion_entries() -> list[dict]:
    """Chapter 2: the pointer laboratory, three arms at equal parameters, three seeds (cell 13)."""
    config = dict(model="sret_nano", dataset="pointers", dataset_options=dict(hops=4, objects=6, n_train=16_000,
                  n_test=2_000), epochs=25, batch_size=64, lr=3e-3, warmup_epochs=1, label_smoothing=0.0)  # fmt: skip
    return [dict(chapter="02_recursion", cell=13, label=name, kind="train", runs=3, train_images=16_000,
                 config=dict(config, model_kwargs=options))
            for name, options in recursion.lab_arms().items()]  # fmt: skip


def slicing_entries() -> list[dict]:
    """Chapter 3: the shapes laboratory, each of the chapter's arms on its seeds (slicing.lab_config)."""
    cell = "lab_accuracy"
    s = chapter_settings("03_sliced_attention", "ARMS = (", cell)
    return [dict(chapter="03_sliced_attention", cell=cell, label=attention, kind="train", runs=len(s["seeds"]),
                 train_images=s["n_train"], config=config_of(slicing.lab_config(
                     attention, 0, s["n_train"], s["n_test"], s["epochs"], num_workers=s["workers"])))
            for attention in s["ARMS"]]  # fmt: skip


def distillation_entries() -> list[dict]:
    """Chapter 5: the teacher, a bank of the chapter's crops (top-3), three of the four students, on its seeds."""
    t = chapter_settings("05_distillation", "offline_teacher")
    s = chapter_settings("05_distillation", "offline_teacher", "make_bank_for", "def history")
    student = s.take("dataset", "dataset_options", "epochs", "batch_size", "lr", "warmup_epochs", "crops_per_image")
    teacher = dict(teacher=s["teacher"], teacher_checkpoint=TEACHER)
    common = dict(chapter="05_distillation", cell="def history", kind="train", runs=len(s["SEEDS"]),
                  train_images=10 * s["PER_CLASS"])  # fmt: skip
    return [
        dict(chapter="05_distillation", cell="offline_teacher", label="teacher resnet18", kind="train", runs=1,
             train_images=DIGITS_TRAIN, makes=TEACHER,  # offline_teacher's model and dataset: resnet18, digits
             config=config_of(TrainConfig(model="resnet18", dataset="digits",
                                          **t.take("dataset_options", "epochs", "warmup_epochs", "lr")))),
        dict(common, label="student, hard labels", config=student),
        dict(common, label="student, online teacher", config=dict(student, **teacher)),
        dict(common, label=f"student, bank top-{s['TOPK']}", bank=dict(crops=s["CROPS"], topk=s["TOPK"]),
             config=dict(student, soft_labels=BANK, **teacher)),
    ]  # fmt: skip


def training_entries() -> list[dict]:
    """Chapters 6 and 7: the CIFAR recipe's run, the EMA experiment and Imagenette (training.scale_to_run)."""
    c = chapter_settings("06_cifar_gpu", "cifar = TrainConfig", "load_or_train")
    cifar = dict(RECIPES["cifar"], **c.take("epochs", "warmup_epochs", "batch_size"), num_workers=4)  # 16 cores
    e = chapter_settings("07_imagenet", "IMAGENET_TRAIN", "IMG_SIZE =", "ExtraEmas")
    ema = TrainConfig(**{**RECIPES["imagenet"], "dataset": "digits", "num_workers": 0,  # the chapter's own folder
                         **e.take("model", "img_size", "batch_size", "lr_base", "crop_scale", "hflip")})  # fmt: skip
    ema = training.scale_to_run(ema, steps=e["EPOCHS"] * (DIGITS_TRAIN // ema.batch_size), epochs=e["EPOCHS"],
                                full_steps=e["in1k_steps"])  # fmt: skip
    n = chapter_settings("07_imagenet", "IMAGENET_TRAIN", "nette = TrainConfig")
    nette = TrainConfig(**{**RECIPES["imagenet"], **n.take("dataset", "img_size", "lr_base", "batch_size"),
                           "num_workers": 4})  # min(4, os.cpu_count()) on a GPU machine's 16 cores  # fmt: skip
    nette = training.scale_to_run(nette, steps=n["epochs"] * (IMAGENETTE_TRAIN // nette.batch_size),
                                  epochs=n["epochs"], full_steps=n["in1k_steps"])  # fmt: skip
    return [
        dict(chapter="06_cifar_gpu", cell="load_or_train", label="sret_t_cifar, the cifar recipe", kind="train",
             runs=1, train_images=CIFAR10_TRAIN, config=cifar),
        dict(chapter="07_imagenet", cell="ExtraEmas", label="sret_nano, scaled recipe", kind="train",
             runs=len(e["SEEDS"]), train_images=DIGITS_TRAIN, config=config_of(ema)),
        dict(chapter="07_imagenet", cell="nette = TrainConfig", label=f"sret_t on Imagenette, {nette.img_size} px",
             kind="train", runs=1, train_images=IMAGENETTE_TRAIN, config=config_of(nette)),
    ]  # fmt: skip


def depth_entries() -> list[dict]:
    """Chapter 8: sret_deep100 on the chapter's seeds and sret_deep1000 on the first, each for its steps."""
    d = chapter_settings("08_extreme_depth", "stream_gradient_norms", "StepLog")
    config = dict(d.take("dataset", "img_size", "batch_size", "label_smoothing", "epochs"),
                  warmup_epochs=d["WARMUP_STEPS"] * d["BATCH"] / DIGITS_TRAIN)  # fmt: skip
    runs = dict(sret_deep100=len(d["SEEDS"]), sret_deep1000=1)  # SEEDS and SEEDS[:1]
    return [dict(chapter="08_extreme_depth", cell="StepLog", label=name, kind="train", runs=runs[name], steps=steps,
                 train_images=DIGITS_TRAIN, config=dict(config, model=name, lr=d["RATES"][name]))
            for name, steps in d["STEPS"].items()]  # fmt: skip


def performance_entries() -> list[dict]:
    """Chapter 9: a warm-up and the chapter's profiled steps of each network, on its seeds."""
    p = chapter_settings("09_performance", "profile_step(")
    return [dict(chapter="09_performance", cell="profile_step(", label=name, kind="loop", model=name,
                 model_kwargs=kwargs, img_size=p["IMG"], batch=p["BATCH"], profile=True,
                 full_steps=len(p["SEEDS"]) * (1 + p["STEPS"]))
            for name, kwargs in p["ARMS"].items()]  # fmt: skip


def reparam_entries() -> list[dict]:
    """Chapter 10: the three networks of reparam_lab, on the chapter's data, seeds and epochs."""
    r = chapter_settings("10_depth_two_ways", "DEPTH =")
    arch = dict(r["arch"], depth=r["DEPTH"], factor=r["FACTOR"], num_classes=10, img_size=r["data"]["img_size"])
    config = dict(r["data"], **r.take("epochs", "warmup_epochs", "batch_size", "lr"))
    return [dict(chapter="10_depth_two_ways", cell="train_arm", label=arm, kind="train", runs=len(r["seeds"]),
                 train_images=CIFAR10_TRAIN, built=dict(arch, arm=arm), config=dict(config, model=arm))
            for arm in reparam_lab.ARMS]  # fmt: skip


def chapter_table() -> list[dict]:
    """Every chapter's colab-profile training, in the book's order."""
    return [*recursion_entries(), *slicing_entries(), *distillation_entries(), *training_entries(),
            *depth_entries(), *performance_entries(), *reparam_entries()]  # fmt: skip


def dry_sized(entry: dict) -> dict:
    """The CPU version of an entry: tiny batches and images, a tenth of the depth, no workers, fp32, no compile."""

    def size(s):  # 32 px (384 px: 64, to stay apart from 224 px)
        return s and (64 if s >= 384 else 32)

    if entry["kind"] == "loop":
        kwargs = dict(entry.get("model_kwargs", {}))
        if entry["model"].startswith("sret_deep"):  # a tenth of the depth: 10 or 100 layers
            kwargs["loops"] = kwargs.get("loops", sret_mini.VARIANTS[entry["model"]].loops[0]) // 10
        return dict(
            entry, batch=2, img_size=size(entry["img_size"]), precision="fp32", compile=False, model_kwargs=kwargs
        )
    config = dict(entry["config"], batch_size=4, num_workers=0, img_size=size(entry["config"].get("img_size")))
    return dict(entry, config=config, **({"bank": dict(entry["bank"], crops=2)} if "bank" in entry else {}))


def describe(entry: dict) -> str:
    """model, image size, batch, precision and options of an entry, in one line."""
    if entry["kind"] == "loop":
        options = [k for k in ("channels_last", "compile", "checkpointing", "profile") if entry.get(k)]
        options += [] if entry.get("optimizer", True) else ["no optimizer step"]
        return (f"{entry['model']} {entry['img_size']} px, batch {entry['batch']}, {entry.get('precision', 'fp32')}"
                + "".join(f", {o}" for o in options))  # fmt: skip
    c = entry["config"]
    model = f"reparam_lab.build({entry['built']})" if "built" in entry else c.get("model", "sret_nano")
    options = [k for k in ("ema", "grad_checkpointing", "compile", "channels_last") if c.get(k)]
    options += [f"teacher {c['teacher']}"] if c.get("teacher") and not c.get("soft_labels") else []
    options += ["soft-label bank"] if c.get("soft_labels") else []
    options += [f"mixup/cutmix, {c['auto_augment']}"] if c.get("auto_augment") and c.get("mixup") else []
    size = f"{c['img_size']} px" if c.get("img_size") else "its own size"
    return (f"{model} on {c['dataset']}, {size}, batch {c['batch_size']}, amp "
            f"{c.get('amp', 'auto')}, {c.get('num_workers', 0)} workers" + "".join(f", {o}" for o in options))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# running the chapters' trainings (in a process of its own: `--chapters-out`)


@contextlib.contextmanager
def generated_datasets(n_train: int, n_test: int, dry: bool):
    """CIFAR and Imagenette, as the chapters load them, made of torchvision FakeData of their size and classes.

    The datasets' own builders run (normalisation, augmentation defaults, names); only the function that
    would read or download the files is replaced.
    """
    from torchvision.datasets import FakeData

    def splits(shape, classes):
        train, test = (
            FakeData(n_train, shape, len(classes)),
            FakeData(n_test, shape, len(classes), random_offset=n_train),
        )
        train.classes = test.classes = classes
        return train, test

    def cifar(name, root, download=True):
        return splits((3, 32, 32), [f"class {i}" for i in range(100 if name == "cifar100" else 10)])

    def imagenette(root, size="160px", download=True):
        short = 80 if dry else int(size.removesuffix("px"))  # the files' shorter side, about 4:3 photos
        return splits((3, short, short * 4 // 3), [(f"class {i}",) for i in range(10)])

    with mock.patch("sret_mini.data.cifar.cifar_splits", cifar), \
         mock.patch("sret_mini.data.folders.imagenette_splits", imagenette):  # fmt: skip
        yield


def made_file(value, made: dict):
    """`value`, or the file an earlier entry made if `value` names one (chapter 5's teacher and bank)."""
    if value not in (TEACHER, BANK):
        return value
    if value not in made:
        raise RuntimeError(f"needs {value}, which an earlier entry failed to make")
    return made[value]


def run_train(entry: dict, device: torch.device, made: dict, work: Path, warmup: int, timed: int) -> dict:
    """A few optimizer steps of a train() call: seconds per step after `warmup` steps, from a global optimizer hook."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from sret_mini import train
    from sret_mini.book.distillation import make_bank_for
    from sret_mini.data import load_dataset
    from sret_mini.distill import build_teacher, teacher_id
    from sret_mini.reparam import JoiningSchedule

    config, steps = dict(entry["config"]), warmup + timed
    images_per_step = config["batch_size"] // (config["crops_per_image"] if config.get("soft_labels") else 1)
    n_train = images_per_step * steps  # exactly `steps` batches: the run stops before it evaluates
    if config["dataset"] in ("shapes", "pointers"):  # generated: exactly the images the steps need
        config["dataset_options"] = dict(config["dataset_options"], n_train=n_train, n_test=config["batch_size"])
    data_dir, extra = str(work / "data"), {}
    with generated_datasets(n_train, config["batch_size"], device.type == "cpu"):
        if "bank" in entry:  # chapter 5's make_bank_for: the teacher over `crops` crops of every training image
            spec = load_dataset(config["dataset"], root=data_dir, download=False, **config.get("dataset_options", {}))
            checkpoint = made_file(config["teacher_checkpoint"], made)
            teacher = build_teacher(config["teacher"], spec.num_classes, checkpoint).to(device)
            tic = time.perf_counter()
            name = teacher_id(config["teacher"], checkpoint)
            bank = make_bank_for(teacher, spec, work / "bank.safetensors", teacher_name=name, device=device,
                                 **entry["bank"])  # fmt: skip
            made[BANK] = str(bank)
            bank_s = time.perf_counter() - tic
            extra = dict(bank_s=bank_s, bank_estimate_s=bank_s * entry["train_images"] / n_train)
            del teacher
        out = work / "teacher" if "makes" in entry else None
        config = {k: made_file(v, made) for k, v in config.items()}
        cfg = TrainConfig(**config, data_dir=data_dir, download=False, stop_after_steps=steps,
                          progress=False, out=str(out) if out else None)  # fmt: skip
        model, hook = None, None
        if "built" in entry:  # chapter 10: its own ViTs; the reparameterized one joins its branches on a schedule
            model = reparam_lab.build(**entry["built"])
            if entry["built"]["arm"] == "reparameterized":
                schedule = JoiningSchedule(model)
                hook = lambda epoch, m: schedule.step(epoch / cfg.epochs)  # noqa: E731
        stamps = []

        def stamp(optimizer, args, kwargs):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            stamps.append(time.perf_counter())

        handle = register_optimizer_step_post_hook(stamp)
        start = time.perf_counter()
        try:
            result = train(cfg, model=model, epoch_hook=hook)
        finally:
            handle.remove()
    if result.stopped != "stop_after_steps" or len(stamps) != steps:
        raise RuntimeError(f"expected {steps} optimizer steps and a stop, got {len(stamps)} and {result.stopped!r}")
    if out is not None:
        made[entry["makes"]] = str(out / "last.pt")
    seconds = (stamps[-1] - stamps[warmup - 1]) / timed
    per_epoch = entry["train_images"] // images_per_step
    per_run = entry.get("steps", cfg.epochs * per_epoch)  # a run stopped after `steps` (chapter 8), or every epoch
    estimate = entry["runs"] * per_run * seconds + extra.get("bank_estimate_s", 0.0)
    plan = dict(steps_per_run=per_run) if "steps" in entry else dict(steps_per_epoch=per_epoch, epochs=cfg.epochs)
    return dict(extra, **plan, seconds_per_step=seconds, first_step_s=stamps[0] - start, estimate_s=estimate)


def run_loop(entry: dict, device: torch.device, warmup: int, timed: int) -> dict:
    """A hand-written training loop on a fixed random batch, as the chapter's cell runs it."""
    torch.manual_seed(0)
    model = sret_mini.create_model(entry["model"], img_size=entry["img_size"], **entry.get("model_kwargs", {}))
    model = model.to(device).train()
    model.set_grad_checkpointing(entry.get("checkpointing", False))
    size = entry["img_size"]
    x = torch.randn(entry["batch"], 3, size, size, device=device)
    y = torch.randint(0, model.num_classes, (entry["batch"],), device=device)
    if entry.get("channels_last"):
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    net = torch.compile(model) if entry.get("compile") else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4) if entry.get("optimizer", True) else None
    bf16 = entry.get("precision") == "bf16"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step():
        with autocast:
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        if optimizer is not None:
            optimizer.step()
        model.zero_grad(set_to_none=False)

    first = seconds_per_call(step, 1, 0, device)  # the first step: compilation, allocation
    seconds = seconds_per_call(step, timed, warmup - 1, device)
    r = dict(seconds_per_step=seconds, first_step_s=first, estimate_s=entry["full_steps"] * seconds)
    if entry.get("profile"):  # chapter 9 profiles its steps: check the profiler sees the GPU's kernels here
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            r["profiled_step_s"] = seconds_per_call(step, 1, 0, device)
        r["profiled_kernel_us"] = sum(e.self_device_time_total for e in prof.key_averages())
        if device.type == "cuda" and r["profiled_kernel_us"] <= 0:
            raise RuntimeError("torch.profiler recorded no GPU kernel time (is CUPTI available?)")
    return r


def run_chapters(out_path: Path, dry: bool) -> None:
    device = torch.device("cpu" if dry else "cuda")
    table = [dry_sized(e) if dry else e for e in chapter_table()]
    made, results = {}, []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        for entry in table:
            # steps: the GPU run times past the loader's prefetched batches (2 per worker), so data loading counts
            workers = entry.get("config", {}).get("num_workers", 0)
            warmup, timed = (1, 1) if dry else (2 + 2 * workers, 5)
            r = dict(chapter=entry["chapter"], cell=entry["cell"], label=entry["label"], kind=entry["kind"],
                     what=describe(entry), runs=entry.get("runs", 1), warmup_steps=warmup, timed_steps=timed)  # fmt: skip
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            tic = time.perf_counter()
            try:
                if entry["kind"] == "train":
                    r.update(run_train(entry, device, made, Path(folder), warmup, timed))
                else:
                    r.update(run_loop(entry, device, warmup, timed))
                r["ok"] = True
            except Exception as error:  # reported, and the next entry still runs
                r.update(ok=False, error=f"{type(error).__name__}: {error}"[-2000:])
            r["wall_s"] = time.perf_counter() - tic
            if device.type == "cuda":
                r["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            results.append(r)
            out_path.write_text(json.dumps(results, indent=1))  # after every entry: a timeout keeps what ran
            status = f"{r['seconds_per_step']:.4f} s/step" if r["ok"] else f"FAILED {r['error']}"
            print(
                f"[chapters] {r['chapter']} cell {r['cell']} {r['label']}: {status} ({r['wall_s']:.1f} s)", flush=True
            )
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    if not all(r["ok"] for r in results):
        sys.exit(1)


# ---------------------------------------------------------------------------------------------
# the parts, run from here


def launch(command: list[str], env: dict, log: Path | None = None) -> subprocess.Popen:
    """Start a part in a process group of its own, its output to `log` (a file: a pipe left unread would stall it)."""
    with open(log, "w") if log else contextlib.nullcontext() as output:  # the child keeps its own copy open
        return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=output,
                                stderr=subprocess.STDOUT if log else None)  # fmt: skip


def finish(process: subprocess.Popen, timeout: float) -> int:
    """The part's exit code; past `timeout`, its whole process group is killed (124)."""
    try:
        return process.wait(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        print(f"(killed after {timeout:.0f} s: the time budget ran out)", flush=True)
        return 124


def torchrun_command(dry: bool, work: Path) -> list[str]:
    """A few steps through torchrun, DDP and the backend: one full epoch (with evaluation), then a stop mid-epoch."""
    batch, per_epoch, stop = TORCHRUN_SIZES[dry]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
            "-m", "sret_mini", "train", "--model", "sret_t_cifar", "--dataset", "shapes", "--img-size", "32",
            "--dataset-options", json.dumps(dict(n_train=batch * per_epoch, n_test=batch)),
            "--batch-size", str(batch), "--epochs", "2", "--stop-after-steps", str(stop),
            "--num-workers", "0" if dry else "2", "--out", str(work / "torchrun"), "--no-progress"]  # fmt: skip


def torchrun_check(dry: bool, rc: int, output: str, work: Path) -> dict:
    """What the torchrun run shows: exit code, DDP and its backend (from the log), updates in last.pt."""
    stop = TORCHRUN_SIZES[dry][2]
    backend = re.search(r"backend_name: (\S+)", output)
    r = dict(returncode=rc, ddp="DDP Initialized with" in output, backend=backend and backend.group(1),
             nccl_log="NCCL INFO" in output, expected_updates=stop)  # fmt: skip
    if (work / "torchrun" / "last.pt").is_file():
        state = torch.load(work / "torchrun" / "last.pt", weights_only=True, map_location="cpu")
        r.update(num_updates=state["num_updates"], epochs_evaluated=len(state["history"]))
    problems = [f"exit code {rc}"] if rc else []
    problems += [] if r["ddp"] else ["no DDP in the log (the run did not join a process group)"]
    if dry and "gloo" not in (r["backend"] or ""):
        problems.append(f"backend {r['backend']}, expected gloo")
    if not dry and not (r["nccl_log"] or "nccl" in (r["backend"] or "")):
        problems.append(f"backend {r['backend']} and no NCCL log, expected NCCL")
    if r.get("num_updates") != stop or r.get("epochs_evaluated") != 1:
        problems.append(f"last.pt: {r.get('num_updates')} updates and {r.get('epochs_evaluated')} epochs evaluated, "
                        f"expected {stop} and 1")  # fmt: skip
    if problems:
        print(output[-6000:])
    return dict(r, ok=not problems, problems=problems)


def span(seconds: float) -> str:
    """Seconds as "40 s", "3.5 min" or "2.1 h"."""
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.1f} min"
        if seconds < 7200
        else f"{seconds / 3600:.1f} h"
    )


def summary_lines(parts: dict, results_dir: Path, device_type: str, total_s: float) -> list[str]:
    lines = [f"== gpu_check summary ({device_type}) =="]
    for name, part in parts.items():
        status = "ok" if part["ok"] else "FAILED"
        lines.append(f"{name:13s} {status:6s} {part['seconds']:6.0f} s  {part.get('detail', '')}".rstrip())
        path = results_dir / f"{name}-{device_type}.json"
        if name == "speed" and part["ok"] and path.is_file():
            for g in (r["goal"] for r in json.loads(path.read_text())["results"] if "goal" in r):
                extra = f" (MAC saving {g['mac_saving']:.1%})" if "mac_saving" in g else ""
                lines.append(f"  goal [{g['setting']}] {g['goal']}: {g['value']:.3f}{extra}")
        if name == "depth_memory" and part["ok"] and path.is_file():
            g = json.loads(path.read_text())["results"][-1]["goal"]
            lines.append(f"  goal [{g['layers']} layers] checkpointing cuts peak activation memory {g['memory_cut']:.1f}x "
                         f"(goal >= {g['memory_cut_goal']:g}x) for {g['time_increase']:+.0%} time per step "
                         f"(goal <= {g['time_increase_goal']:+.0%})")  # fmt: skip
        if name == "torchrun" and "torchrun" in part:
            t = part["torchrun"]
            lines.append(f"  backend {t['backend']}, DDP {t['ddp']}, NCCL log {t['nccl_log']}, {t.get('num_updates')} "
                         f"updates (expected {t['expected_updates']}); {'; '.join(t['problems']) or 'as expected'}")  # fmt: skip
        for r in part.get("chapters", []):
            where = f"  {r['chapter']}/{r['cell']} {r['label']}:"
            if not r["ok"]:
                lines.append(f"{where} FAILED {r['error'][:300]}")
                continue
            peak = f", peak {r['peak_gib']:.2f} GiB" if "peak_gib" in r else ""
            plan = (f" ({r['runs']} x {r['epochs']} epochs x {r['steps_per_epoch']} steps)" if "epochs" in r
                    else f" ({r['runs']} x {r['steps_per_run']} steps)" if "steps_per_run" in r else "")  # fmt: skip
            lines.append(f"{where} {1000 * r['seconds_per_step']:.1f} ms/step{peak}, first step {r['first_step_s']:.1f} s, "
                         f"full colab run ~ {span(r['estimate_s'])}{plan}")  # fmt: skip
        chapters = sorted({r["chapter"] for r in part.get("chapters", [])})
        for chapter in chapters:
            rs = [r for r in part["chapters"] if r["chapter"] == chapter]
            total = span(sum(r.get("estimate_s", 0.0) for r in rs))
            failed = sum(not r["ok"] for r in rs)
            lines.append(f"  chapter {chapter}: {len(rs)} trainings, full colab profile ~ {total} on this device"
                         + (f" ({failed} failed, not counted)" if failed else ""))  # fmt: skip
    failed = [name for name, part in parts.items() if not part["ok"]]
    lines.append(f"total wall time {total_s:.0f} s; failed parts: {', '.join(failed) or 'none'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the same code paths on the CPU, at tiny sizes")
    parser.add_argument("--results-dir", default=None, help="where the JSON files go (default bench/results)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="parts to run (default: all)")
    parser.add_argument(
        "--speed-models",
        nargs="+",
        default=None,
        help=f"models for bench/speed.py (default {' '.join(SPEED_MODELS)}; dry run: the first three)",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="stop (and fail) what still runs after this many seconds (default 480 on GPU, 600 dry)",
    )
    parser.add_argument("--chapters-out", help=argparse.SUPPRESS)  # internal: the chapters part, in its process
    args = parser.parse_args()
    if args.chapters_out:
        run_chapters(Path(args.chapters_out), args.dry_run)
        return

    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        sys.exit("no CUDA GPU visible: run with --dry-run to check the code paths on the CPU")
    start_s, budget = time.perf_counter(), args.budget_s or (600 if dry else 480)
    results_dir = Path(args.results_dir).resolve() if args.results_dir else RESULTS
    device = torch.device("cpu" if dry else "cuda")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    if dry:
        env["CUDA_VISIBLE_DEVICES"] = ""  # every process on the CPU, even on a machine with a GPU
    python, where = [sys.executable], ["--results-dir", str(results_dir)]
    speed_models = args.speed_models or SPEED_MODELS[: 3 if dry else None]  # the goals need the first three
    parts = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        work = Path(folder)
        commands = {
            "speed": [*python, "bench/speed.py", "--models", *speed_models, *where,
                      *(["--modes", "train", "--train-batch", "2", "--steps", "1"] if dry
                        else ["--steps", "10", "--warm-compile-cache"])],
            "depth_memory": [*python, "bench/depth_memory.py", *where,
                             *(["--layers", "100", "--img-size", "32", "--batch", "2", "--steps", "1"] if dry
                               else ["--layers", "100", "1000", "--steps", "3"])],
            "torchrun": torchrun_command(dry, work),
            "chapters": [*python, str(Path(__file__).resolve()), "--chapters-out", str(work / "chapters.json"),
                         *(["--dry-run"] if dry else [])],
        }  # fmt: skip
        # DDP logs its construction (with the backend) at these levels; NCCL logs its start-up
        envs = dict(torchrun=dict(env, TORCH_CPP_LOG_LEVEL="INFO", TORCH_DISTRIBUTED_DEBUG="INFO", NCCL_DEBUG="INFO"))
        logs = dict(torchrun=work / "torchrun.log")  # read back for its check
        # on a GPU one part at a time, so that none disturbs another's timing; the dry run's timings mean
        # nothing, so there every part starts at once (its 2-4 CPU cores then work in parallel)
        running = {name: launch(commands[name], envs.get(name, env), logs.get(name)) for name in args.parts if dry}
        for name in args.parts:
            remaining = budget - (time.perf_counter() - start_s)
            print(f"== {name} ({remaining:.0f} s of the budget left) ==", flush=True)
            if remaining <= 0:
                parts[name] = dict(ok=False, seconds=0.0, detail="not run: the time budget ran out")
                continue
            tic = time.perf_counter()
            process = running.get(name) or launch(commands[name], envs.get(name, env), logs.get(name))
            rc = finish(process, remaining)
            part = dict(ok=rc == 0, detail=f"exit code {rc}", command=" ".join(commands[name][1:]))
            if name == "torchrun":
                part["torchrun"] = torchrun_check(dry, rc, logs["torchrun"].read_text(errors="replace"), work)
                part["ok"] = part["torchrun"]["ok"]
            if name == "chapters":  # written after every training: those that ran, even if the budget ran out
                done = work / "chapters.json"
                part["chapters"] = json.loads(done.read_text()) if done.is_file() else []
                if missing := len(chapter_table()) - len(part["chapters"]):
                    part.update(ok=False, detail=f"exit code {rc}, {missing} trainings not run")
            parts[name] = dict(part, seconds=time.perf_counter() - (start_s if dry else tic))
        total = time.perf_counter() - start_s
        saved = save("gpu_check", device, [dict(part=name, **part) for name, part in parts.items()]
                     + [dict(total_wall_s=total, budget_s=budget, dry_run=dry)], results_dir)  # fmt: skip
    print("saved", saved)
    print("\n".join(summary_lines(parts, results_dir, device.type, total)))
    sys.exit(0 if all(part["ok"] for part in parts.values()) else 1)


if __name__ == "__main__":
    main()
