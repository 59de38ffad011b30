"""History.plot: a PNG of the loss (and accuracy) curves; a clear error without matplotlib."""

from __future__ import annotations

import sys

import pytest

import graphc as gx
from graphc import optim
from graphc.train import History
from tests.train.common import mlp, moons

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def history() -> History:
    d = moons(n=80)
    return gx.train.fit(mlp(), d.X_train, d.y_train, optimizer=optim.SGD(0.2), epochs=3,
                        validation=(d.X_test, d.y_test), progress=False)


def test_plot_writes_a_png(history, tmp_path):
    path = history.plot(tmp_path / "curves" / "loss.png")
    assert path == tmp_path / "curves" / "loss.png"
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_plot_without_accuracy_is_one_panel_wide(history, tmp_path):
    regression = History(history={"loss": [1.0, 0.5]}, step_loss=[1.0, 0.5],
                         smoothed_loss=[1.0, 0.9], epochs=2, best_epoch=2)
    narrow = regression.plot(tmp_path / "narrow.png")
    wide = history.plot(tmp_path / "wide.png")
    assert _png_width(narrow.read_bytes()) * 2 == _png_width(wide.read_bytes())


def _png_width(content: bytes) -> int:
    assert content[:8] == PNG_MAGIC
    return int.from_bytes(content[16:20], "big")  # IHDR: width, then height


def test_plot_without_matplotlib(history, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"History.plot needs matplotlib, which is not "
                                          r"installed: pip install matplotlib"):
        history.plot(tmp_path / "loss.png")
    assert not (tmp_path / "loss.png").exists()


def test_record_epoch():
    h = History()
    h.record_epoch({"loss": 2.0, "accuracy": 0.5})
    h.record_epoch({"loss": 1.0, "accuracy": 0.75})
    assert h.history == {"loss": [2.0, 1.0], "accuracy": [0.5, 0.75]} and h.epochs == 2
