"""The README's example runs as written."""

import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_readme_example_runs_and_trains():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    W = namespace["W"]
    before = namespace["loss_value"]
    assert W.value.shape == (4, 3) and before > 0
    after, _ = namespace["step"](namespace["xb"], namespace["yb"])
    assert after < before  # one SGD step on the same batch lowers the loss


def section_blocks(title: str) -> list[str]:
    """The python blocks of the README section ``## title``."""
    section = README.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_networks_and_training_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # history.plot writes loss.png here
    fit_block, step_block = section_blocks("Networks and training")
    namespace: dict = {}
    exec(compile(fit_block, "README.md", "exec"), namespace)
    assert namespace["scores"]["accuracy"] > 0.9
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    model = namespace["model"]
    assert [p.name for p in model.params()] == ["dense/W", "dense/b", "dense_1/W", "dense_1/b"]
    batch = namespace["data"].X_train[:64], namespace["data"].y_train[:64]
    before = model.evaluate(*batch)["loss"]
    exec(compile(step_block, "README.md", "exec"), namespace)
    assert namespace["opt"].step.value == 20
    assert model.evaluate(*batch)["loss"] < before  # 20 steps on one batch fit it better
