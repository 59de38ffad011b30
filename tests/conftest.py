"""Suite-wide options: which backend runs the graphs of the whole test suite.

``pytest --backend llvm`` sets ``GRAPHC_BACKEND=llvm`` for the session, so every
``gx.compile`` that names no backend (and ``fit``, whose default reads the same
variable) compiles with the LLVM backend; subprocesses the tests start inherit it.
Without the option the environment is left as it is: ``gx.compile`` then uses
``$GRAPHC_BACKEND`` if set, else numpy.

Tests about the numpy backend itself (its generated source, its repr) are marked
``numpy_backend``: they run on numpy whatever ``--backend`` says. The ``backend``
fixture runs a test once per backend.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

BACKENDS = ("numpy", "llvm")
ENV = "GRAPHC_BACKEND"  # graphc.compile.BACKEND_ENV (not imported: conftest loads first)

#: Tests outside tests/backends/numpy that inspect what only the numpy backend has
#: (``fn.source``, its name in a repr), or that compile an op defined in the test itself
#: (a NumPy ``impl``, no llvm rule: the llvm backend refuses it by name), by node id prefix.
NUMPY_BACKEND_TESTS = (
    "tests/backends/numpy/",
    "tests/ops/test_reduce.py::test_mean_of_a_symbolic_dim_bakes_in_no_size",
    "tests/test_compile.py::test_repr_names_inputs_and_counts",
    "tests/test_autodiff.py::test_jvp_substitutes_a_dummy_that_stays",
    "tests/test_check.py::test_wrong_first_derivative_is_detected",
    "tests/test_check.py::test_wrong_second_derivative_is_detected_only_at_order_two",
    "tests/test_check.py::test_non_scalar_output_is_checked_through_a_projection",
    "tests/test_check.py::test_only_the_wrong_argument_is_flagged",
    "tests/test_check.py::test_argnums_and_integer_arguments",
    "tests/test_check.py::test_large_values_are_not_false_alarms",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend", choices=BACKENDS, default=None,
        help="backend for every graph compiled without naming one (sets $GRAPHC_BACKEND "
             "for the session); default: $GRAPHC_BACKEND if set, else numpy")


def pytest_configure(config: pytest.Config) -> None:
    # compiled objects go to a cache of this session, never the user's own
    if "GRAPHC_CACHE_DIR" not in os.environ:
        os.environ["GRAPHC_CACHE_DIR"] = tempfile.mkdtemp(prefix="graphc-test-cache-")
    config.addinivalue_line(
        "markers", "numpy_backend: inspects the numpy backend; runs on numpy whatever "
                   "--backend says")
    chosen = config.getoption("--backend")
    if chosen is not None:
        config.stash[_PREVIOUS] = os.environ.get(ENV)
        os.environ[ENV] = chosen


def pytest_unconfigure(config: pytest.Config) -> None:
    if _PREVIOUS in config.stash:
        previous = config.stash[_PREVIOUS]
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous


_PREVIOUS = pytest.StashKey[str | None]()


def pytest_report_header(config: pytest.Config) -> str:
    return f"graphc backend: {os.environ.get(ENV) or 'numpy'} (--backend / ${ENV})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(NUMPY_BACKEND_TESTS):
            item.add_marker(pytest.mark.numpy_backend)


@pytest.fixture(autouse=True)
def _pin_numpy_backend(request: pytest.FixtureRequest,
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests marked ``numpy_backend`` compile with numpy, whatever the session's backend."""
    if request.node.get_closest_marker("numpy_backend") is not None:
        monkeypatch.setenv(ENV, "numpy")
    yield


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend's name in turn: a test taking ``backend`` runs once per backend."""
    return request.param
