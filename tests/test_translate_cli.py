"""``python -m studio.translate`` run as a user runs it: good and bad files mixed, bad checkpoints, usage errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import REPO

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def translate(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "studio.translate", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def digit(path, label=3):
    from studio.data.printed import render_digit

    Image.fromarray((render_digit(label, np.random.default_rng(label)) * 255).astype(np.uint8)).save(path)
    return path


def test_a_mixed_folder_translates_the_good_files_and_names_each_bad_one(tmp_path, cyclegan_path):  # noqa: F811
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    for label in (1, 2, 3):
        digit(source / f"d{label}.jpg" if label == 2 else source / f"d{label}.png", label)
    digit(source / "sub" / "d4.png", 4)
    (source / "notes.txt").write_text("not a picture")
    (source / "empty.png").write_bytes(b"")
    (source / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    out = tmp_path / "out"
    result = translate("--checkpoint", cyclegan_path, "--direction", "BtoA", source, tmp_path / "gone.png", "-o", out)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4, lines  # one line per bad input, nothing else
    expected = {"notes.txt": "not an image", "empty.png": "empty file", "drawing.svg": "SVG", "gone.png": "no such file"}
    for name, why in expected.items():
        assert sum(name in line and why in line for line in lines) == 1, (name, lines)
    assert "Traceback" not in result.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["in/d1.png", "in/d2.png", "in/d3.png", "in/sub/d4.png"]  # two inputs: each keeps its folder
    assert Image.open(out / "in" / "d1.png").size == (32, 32)
    summary = result.stdout.strip().splitlines()[-1]
    assert "translated 4 of 8 pictures" in summary and "images/s" in summary and "4 failed" in summary
    assert "printed -> handwritten" in summary


def test_all_good_exits_0_and_tiles_whole_pictures_with_their_round_trip(tmp_path, cyclegan_path):  # noqa: F811
    wide = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (70, 100), dtype=np.uint8)).save(wide)
    out = tmp_path / "out"
    result = translate("--checkpoint", cyclegan_path, "--tile", "--cycle", wide, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert Image.open(out / "wide.png").size == (100, 70) and (out / "wide.cycle.png").exists()
    assert "translated 1 of 1 pictures (handwritten -> printed, tile)" in result.stdout and "images/s" in result.stdout


def test_a_bad_checkpoint_is_one_line_and_exit_2(tmp_path):
    out = tmp_path / "out"
    cases = [
        (tmp_path / "gone.safetensors", "gone.safetensors: no such file"),
        (REPO / "studio" / "checkpoints" / "vae_mnist_2d.safetensors", "a 'vae' checkpoint, not a CycleGAN model"),
    ]
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    cases.append((junk, "junk.safetensors"))
    for checkpoint, message in cases:
        result = translate("--checkpoint", checkpoint, tmp_path, "-o", out, timeout=60)
        assert result.returncode == 2, (checkpoint, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not out.exists()


def test_usage_errors_exit_2(tmp_path, cyclegan_path):  # noqa: F811
    missing_out = translate("--checkpoint", cyclegan_path, tmp_path, timeout=60)
    assert missing_out.returncode == 2 and "-o/--out" in missing_out.stderr
    both = translate("--checkpoint", cyclegan_path, "--tile", "--fit", "crop", tmp_path, "-o", tmp_path / "o", timeout=60)
    assert both.returncode == 2 and "--tile and --fit" in both.stderr
    direction = translate("--checkpoint", cyclegan_path, "--direction", "sideways", tmp_path, "-o", tmp_path / "o",
                          timeout=60)
    assert direction.returncode == 2 and "--direction" in direction.stderr
    overlap = translate("--checkpoint", cyclegan_path, "--tile", "--overlap", "40", tmp_path, "-o", tmp_path / "o",
                        timeout=60)
    assert overlap.returncode == 2 and "--overlap must be in [0, 32)" in overlap.stderr


def test_every_hostile_checkpoint_is_one_line_and_exit_2_and_runs_nothing(tmp_path, capsys):
    from hostile_files import hostile_checkpoints
    from studio.translate import main

    marker = tmp_path / "marker"
    picture = digit(tmp_path / "d.png")
    for name, data in hostile_checkpoints(marker):
        path = tmp_path / name
        path.write_bytes(data)
        assert main(["--checkpoint", str(path), str(picture), "-o", str(tmp_path / "out")]) == 2, name
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and name in err and "Traceback" not in err, (name, err)
    assert not marker.exists() and not (tmp_path / "out").exists()
