"""placeholder"""
from collections import Counter
from graphc.passes.report import PassReport
def fuse(graph):
    return graph, PassReport("fuse", Counter(), len(graph), len(graph), 0.0)
