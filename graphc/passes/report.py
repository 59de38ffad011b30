"""What the optimizer did: per pass, the rules that fired, node counts and time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class PassReport:
    """One pass: ``fired`` counts each rule (or fusion decision) by name."""

    name: str
    fired: Counter
    nodes_before: int
    nodes_after: int
    seconds: float
    sweeps: int = 1


@dataclass
class Report:
    """The whole pipeline's report; ``str(report)`` is a readable table."""

    passes: list[PassReport] = field(default_factory=list)

    @property
    def fired(self) -> Counter:
        """How many times each rule fired, over every pass."""
        total: Counter = Counter()
        for p in self.passes:
            total.update(p.fired)
        return total

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.passes)

    @property
    def nodes_before(self) -> int:
        return self.passes[0].nodes_before if self.passes else 0

    @property
    def nodes_after(self) -> int:
        return self.passes[-1].nodes_after if self.passes else 0

    def __str__(self) -> str:
        lines = [f"{'pass':<14}{'nodes':>16}{'ms':>10}  rules fired"]
        for p in self.passes:
            rules = ", ".join(f"{name}×{n}" for name, n in p.fired.most_common()) or "-"
            nodes = f"{p.nodes_before} → {p.nodes_after}"
            lines.append(f"{p.name:<14}{nodes:>16}{p.seconds * 1e3:>10.1f}  {rules}")
        lines.append(f"{'total':<14}{f'{self.nodes_before} → {self.nodes_after}':>16}"
                     f"{self.seconds * 1e3:>10.1f}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython
        printer.text(str(self))
