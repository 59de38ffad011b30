"""``graphc demo`` tells the whole story: summary, compile, train, test, speed, drawings."""

import contextlib
import sys

import numpy as np
import pytest

import graphc as gx
from graphc import demo
from graphc.backends import BACKENDS
from graphc.cli import main


def test_a_short_demo_trains_reports_and_draws(tmp_path):
    lines: list[str] = []
    result = demo.run(tmp_path / "demo", epochs=3, progress=False, timing_steps=3,
                      say=lines.append)
    text = "\n".join(lines)
    assert 'Model: "digits_mlp"' in text and "Trainable params: 17,226" in text
    assert "(batch, 128)" in text and "fuse" in text  # the summary, the optimizer's report
    assert result.test_accuracy >= 0.85  # three epochs already learn most digits
    assert f"test accuracy: {result.test_accuracy:.4f} on 360 digits" in text
    assert set(result.steps_per_second) == {f"{backend} ({label})" for backend in BACKENDS
                                            for label in ("optimized", "optimize=False")}
    assert all(rate > 0 for rate in result.steps_per_second.values())
    names = sorted(p.name for p in result.files)
    assert names == ["backward.svg", "forward.svg", "loss.png"]
    assert all(p.parent == tmp_path / "demo" and p.stat().st_size > 1000 for p in result.files)
    assert (tmp_path / "demo" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "∂loss/∂node" in (tmp_path / "demo" / "backward.svg").read_text()


@pytest.mark.parametrize("fails", [False, True])
def test_timing_leaves_the_model_as_it_was(fails, monkeypatch):
    model = demo.build_model()
    before = [p.value.copy() for p in model.params()]
    X = np.random.default_rng(0).random((8, 64), dtype=np.float32)
    if fails:  # the second compilation fails, after the first one's steps ran
        real_compile, calls = gx.compile, []

        def compile_once(*args, **kwargs):
            calls.append(args)
            if len(calls) > 1:
                raise RuntimeError("compiler failure")
            return real_compile(*args, **kwargs)

        monkeypatch.setattr(demo.gx, "compile", compile_once)
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext():
        demo.step_speeds(model, X, np.arange(8) % 10, steps=2)
    assert all(np.array_equal(p.value, b) for p, b in zip(model.params(), before, strict=True))


def test_the_command_line_runs_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["graphc"])
    assert main(["demo", "--out", str(tmp_path), "--epochs", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy:" in out and str(tmp_path / "loss.png") in out
