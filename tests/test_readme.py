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
