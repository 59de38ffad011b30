"""The machine compiled code is for: its thread count and its key, known without LLVM.

Code depends on the host CPU's name and features as LLVM sees them, and asking LLVM
means loading it (tens of milliseconds in a fresh process). A process that only runs
cached code need not: the answer is kept in the cache directory, under a name derived
from the CPU as the kernel describes it and from llvmlite's version, and asked of LLVM
once per machine.
"""

from __future__ import annotations

import functools
import hashlib
import os

import llvmlite

#: the lines of ``/proc/cpuinfo`` that identify a CPU model and what it can do (not its
#: clock or its cache state, which change from one reading to the next)
CPU_FIELDS = ("vendor_id", "cpu family", "model", "model name", "stepping", "flags")


def num_threads() -> int:
    """Threads a large loop is split across (``GRAPHC_NUM_THREADS``, default the CPUs
    available to this process)."""
    value = os.environ.get("GRAPHC_NUM_THREADS")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"GRAPHC_NUM_THREADS must be a positive integer, got "
                             f"{value!r}") from None
    return available_cpus()


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@functools.cache
def cpu_description() -> str | None:
    """The first CPU of ``/proc/cpuinfo``, its ``CPU_FIELDS`` only; None where the kernel
    gives no such file (then the key is always asked of LLVM)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    first = text.split("\n\n", 1)[0]
    fields = [line for line in first.splitlines()
              if line.split(":", 1)[0].strip() in CPU_FIELDS]
    return "\n".join(fields) if fields else None


@functools.cache
def host_key() -> str:
    """What compiled code depends on besides the graph: CPU name, features and llvmlite's
    version, read from the cache directory when LLVM was asked on this machine before."""
    from graphc.backends.llvm import cache

    description = cpu_description()
    memo = None
    if description is not None:
        digest = hashlib.sha256(f"{description}\n{llvmlite.__version__}".encode()).hexdigest()
        memo = f"host-{digest[:32]}.txt"
        if (known := cache.read(memo)) is not None:
            return known.decode()
    from graphc.backends.llvm import target

    key = target.host_key()
    if memo is not None:
        cache.write(memo, key.encode())
    return key
