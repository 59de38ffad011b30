"""graphc.viz: draw graphs with Graphviz (being written)."""
