"""Bad input at the command line: one line that names the problem and the fix, exit status 2, no
traceback (unless --debug); and files that are not what they claim are refused, never used."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import sret_mini
from sret_mini import TrainConfig, train
from sret_mini import cli as command
from sret_mini.cli import main as cli
from sret_mini.data import load_dataset
from sret_mini.distill.softlabels import SoftLabelBank, make_bank

QUICK = ["--dataset", "shapes", "--dataset-options", '{"n_train": 64, "n_test": 32}', "--img-size", "32",
         "--batch-size", "32", "--epochs", "1", "--no-progress"]  # fmt: skip


def refused(capsys, *argv) -> str:
    """Run `sret-mini ARGV` in this process; assert exit status 2 and one line on stderr; return it."""
    with pytest.raises(SystemExit) as stop:
        cli(list(argv))
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "epochs=0 must be >= 1"),
        (["--batch-size", "0"], "batch_size=0 must be >= 1"),
        (["--batch-size", "-5"], "batch_size=-5 must be >= 1"),
        (["--crops-per-image", "0"], "crops_per_image=0 must be >= 1"),
        (["--img-size", "0"], "img_size=0 must be >= 1"),
        (["--model-kwargs", "[1, 2]"], "model_kwargs must be a dict"),
        (["--model-kwargs", '{"loops": 2.5}'], "loops=2.5 must be a whole number"),
        (["--model-kwargs", '{"img_size": "16"}'], "img_size='16' must be a whole number"),
    ],
)
def test_a_training_option_out_of_range_is_refused_in_one_line(capsys, tmp_path, flags, message):
    err = refused(capsys, "train", *QUICK, *flags, "--out", str(tmp_path / "run"))
    assert message in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="epochs=0"):
        cli(["train", *QUICK, "--epochs", "0", "--debug"])


def test_a_second_ctrl_c_exits_with_the_interrupt_status(capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stop:
        command.run("sret-mini train", interrupted, [])
    assert stop.value.code == 130 and "interrupted" in capsys.readouterr().err


def test_out_naming_a_file_is_refused_in_one_line(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert "is a file, not a folder" in refused(capsys, "train", *QUICK, "--out", str(tmp_path / "notes.txt"))


@pytest.fixture(scope="module")
def run_with_ema(tmp_path_factory):
    out = tmp_path_factory.mktemp("ema")
    train(TrainConfig(dataset="shapes", dataset_options=dict(n_train=64, n_test=32), img_size=32, batch_size=32,
                      epochs=1, ema=True, progress=False, out=str(out)))  # fmt: skip
    return out


def test_eval_ema_reads_what_train_ema_writes(run_with_ema, capsys):
    result = cli(["eval", "--checkpoint", str(run_with_ema / "best.pt"), "--ema"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result is None and printed["images"] == 32


def flipped(source, target, count=16):
    raw = bytearray(source.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + count] = bytes(b ^ 0xFF for b in raw[middle : middle + count])
    target.write_bytes(bytes(raw))
    return target


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.pt", b"", "is empty (0 bytes)"),
        ("notes.pt", b"these are my notes, not weights\n", "is not a PyTorch checkpoint"),
        ("noise.safetensors", b"\x00\x01 noise" * 40, "is not a readable safetensors file"),
        ("flipped.pt", None, "is corrupted"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_refused_by_name(run_with_ema, capsys, tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        flipped(run_with_ema / "best.pt", path)
    else:
        path.write_bytes(content)
    err = refused(capsys, "eval", "--checkpoint", str(path))
    assert str(path) in err and message in err


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    spec = load_dataset("shapes", n_train=40, n_test=16, img_size=32)
    torch.manual_seed(0)
    teacher = sret_mini.create_model("sret_nano", num_classes=2, img_size=32).eval()
    path = tmp_path_factory.mktemp("bank") / "bank.safetensors"
    return make_bank(teacher, spec.train, path, dataset_name=spec.name, teacher_name="nano@test", num_classes=2,
                     img_size=32, mean=spec.mean, std=spec.std, crops=4, topk=2, progress=False)  # fmt: skip


def rewritten(bank, target, info=None, raw_info=None, tensors=None):
    """A copy of the bank with its metadata or tensors changed, and its old checksum kept."""
    with safe_open(str(bank), framework="pt") as f:
        meta, stored = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    old = json.loads(meta["info"])
    meta["info"] = raw_info if raw_info is not None else json.dumps({**old, **(info or {})})
    save_file({**stored, **(tensors or {})}, str(target), metadata=meta)
    return target


def test_a_bank_opens_when_untouched(bank):
    assert SoftLabelBank(bank).info["crops"] == 4


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(info=dict(img_size=48)), "is corrupted"),  # the crops would be made at another size
        (dict(info=dict(mean=[0.0, 0.0, 0.0])), "is corrupted"),  # ... or normalised otherwise
        (dict(raw_info="{not json"), "is not a readable soft-label bank"),
        (dict(tensors=dict(probs=torch.zeros(40, 4, 2, dtype=torch.float16))), "is corrupted"),
    ],
)
def test_a_bank_whose_metadata_or_tensors_changed_is_refused(bank, tmp_path, change, message):
    path = rewritten(bank, tmp_path / "edited.safetensors", **change)
    with pytest.raises(ValueError, match=message):
        SoftLabelBank(path)


def test_a_file_that_is_not_a_bank_is_refused_in_one_line(capsys, tmp_path):
    path = tmp_path / "bank.safetensors"
    path.write_text("not a bank")
    err = refused(capsys, "train", *QUICK, "--soft-labels", str(path), "--crops-per-image", "1")
    assert str(path) in err and "is not a readable soft-label bank" in err


def test_an_undecodable_image_in_an_image_folder_is_named(tmp_path):
    from data_fixtures import write_image_folder

    for split in ("train", "val"):
        write_image_folder(tmp_path / split, ["cat", "dog"])
    broken = sorted((tmp_path / "train" / "cat").iterdir())[0]
    broken.write_text("not a picture")
    spec = load_dataset("imagefolder", root=tmp_path, download=False)
    with pytest.raises(ValueError, match=rf"{broken} is not a readable image.*remove it"):
        spec.train[0]


def test_a_missing_imagenette_names_a_download_command_that_exists(tmp_path):
    with pytest.raises(FileNotFoundError) as error:  # DatasetUnavailable
        load_dataset("imagenette", root=tmp_path, download=False, size="320px")
    assert f"`sret-mini download imagenette --root {tmp_path} --size 320px`" in str(error.value)


def test_a_model_made_for_an_impossible_size_is_told_a_size_that_works():
    with pytest.raises(ValueError, match=r"e\.g\. (\d+)x\1") as error:
        sret_mini.create_model("sret_lt_g16", img_size=64)
    size = int(str(error.value).split("e.g. ")[1].split("x")[0])
    assert size != 64 and sret_mini.create_model("sret_lt_g16", img_size=size).cfg.fits((size, size))


def test_a_saved_state_dict_loads_directly_and_is_checked(tmp_path):
    model = sret_mini.create_model("sret_nano")
    path = sret_mini.save_atomic(model.state_dict(), tmp_path / "weights.pt")
    model.load_state_dict(torch.load(path, weights_only=True))  # the checksum is checked, then dropped
    edited = torch.load(path, weights_only=True)
    edited["head.bias"] = edited["head.bias"] + 1
    with pytest.raises(ValueError, match="is corrupted"):
        model.load_state_dict(edited)
