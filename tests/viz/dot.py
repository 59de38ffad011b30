"""Reading DOT text back in tests: nodes, edges, clusters and the text of HTML labels.

Only what ``graphviz.Digraph.source`` writes needs parsing: one statement per line,
``id [key=value ...]`` for nodes, ``tail -> head [...]`` for edges, ``subgraph name {``
for clusters, and values that are bare words, ``"quoted"`` or ``<html>``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from graphc.viz import style

GREEN, RED = style.VALUE_COLOR, style.GRAD_COLOR


def parse_attrs(text: str) -> dict[str, str]:
    """``key=value`` pairs of an attribute list (without the brackets)."""
    attrs, i = {}, 0
    while i < len(text):
        match = re.compile(r"\s*(\w+)=").match(text, i)
        if not match:
            break
        key, i = match.group(1), match.end()
        if text[i] == "<":  # HTML-like: balanced angle brackets
            depth, start = 0, i
            while True:
                depth += {"<": 1, ">": -1}.get(text[i], 0)
                i += 1
                if depth == 0:
                    break
            attrs[key] = text[start:i]
        elif text[i] == '"':
            end = i + 1
            while text[end] != '"' or text[end - 1] == "\\":
                end += 1
            attrs[key], i = text[i + 1:end], end + 1
        else:
            end = i
            while end < len(text) and not text[end].isspace():
                end += 1
            attrs[key], i = text[i:end], end
    return attrs


@dataclass
class Dot:
    """The statements of a DOT source, by kind."""

    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    #: cluster name -> its attributes (label, style, ...) and the nodes declared in it
    clusters: dict[str, dict[str, str]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    #: cluster name -> the name of the cluster it is nested in (None at the top)
    parent: dict[str, str | None] = field(default_factory=dict)
    graph: dict[str, str] = field(default_factory=dict)

    def text(self, node_id: str) -> str:
        return label_text(self.nodes[node_id].get("label", node_id))

    def find(self, first_line: str) -> list[str]:
        """Ids of the nodes whose label's first line is ``first_line``."""
        return [n for n in self.nodes if self.text(n).split("\n")[0] == first_line]

    def one(self, first_line: str) -> str:
        found = self.find(first_line)
        assert len(found) == 1, (first_line, [self.text(n) for n in self.nodes])
        return found[0]

    def cluster_labels(self) -> list[str]:
        return [label_text(c.get("label", "")) for c in self.clusters.values()]

    def cluster_named(self, title: str) -> str:
        names = [n for n, c in self.clusters.items()
                 if label_text(c.get("label", "")).split("\n")[0] == title]
        assert len(names) == 1, (title, self.cluster_labels())
        return names[0]


def parse(source: str) -> Dot:
    dot, stack = Dot(), []
    for raw in source.splitlines():
        line = raw.strip()
        if match := re.fullmatch(r"subgraph (\S+) \{", line):
            dot.parent[match.group(1)] = stack[-1] if stack else None
            stack.append(match.group(1))
            dot.clusters[match.group(1)] = {}
            dot.members[match.group(1)] = []
        elif line == "}":
            if stack:
                stack.pop()
        elif match := re.fullmatch(r"(\S+) -> (\S+)(?: \[(.*)\])?", line):
            dot.edges.append((match.group(1), match.group(2),
                              parse_attrs(match.group(3) or "")))
        elif match := re.fullmatch(r"(\S+) \[(.*)\]", line):
            name, attrs = match.group(1), parse_attrs(match.group(2))
            if name == "graph" and stack:
                dot.clusters[stack[-1]].update(attrs)
            elif name == "graph":
                dot.graph.update(attrs)
            elif name not in ("node", "edge"):
                dot.nodes[name] = attrs
                for cluster in stack:
                    dot.members[cluster].append(name)
        elif match := re.fullmatch(r"(\w+)=(.*)", line):
            target = dot.clusters[stack[-1]] if stack else dot.graph
            target.update(parse_attrs(line))
    return dot


def label_text(label: str) -> str:
    """The text an HTML-like label shows, one line per ``<br/>`` or table row."""
    text = re.sub(r"<br[^>]*>|</tr>", "\n", label.removeprefix("<").removesuffix(">"))
    text = re.sub(r"<[^>]+>", "", text)
    return "\n".join(line.strip() for line in html.unescape(text).split("\n") if line.strip())


def colored(label: str, color: str) -> list[str]:
    """The texts of ``label`` written in ``color``."""
    return [html.unescape(t) for t in re.findall(rf'<font color="{color}"[^>]*>([^<]*)</font>',
                                                 label)]
