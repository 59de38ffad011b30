"""Patterns: what matches what, what gets bound, and building a pattern back into nodes."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gx
from graphc.passes.pattern import Var, constant_value, instantiate, is_constant_equal_to, match, op
from graphc.passes.pattern import root_op as root_op_of

x, y = Var("x"), Var("y")


def vector(name: str, dtype: str = "float64") -> gx.Tensor:
    return gx.input(name, (2,), dtype)


def test_a_var_used_twice_must_bind_the_same_node():
    a, b = vector("a"), vector("b")
    assert match(x - x, a - a) == {"x": a}
    assert match(x - x, a - b) is None
    assert match(x - y, a - b) == {"x": a, "y": b}


def test_commutative_ops_match_either_way_round():
    a = vector("a")
    assert match(x * 1, 1 * a) == {"x": a}
    assert match(x * 1, a * 1) == {"x": a}
    assert match(1 + x, a + 1) == {"x": a}


def test_non_commutative_ops_match_in_order_only():
    a = vector("a")
    assert match(x - 1, a - 1) == {"x": a}
    assert match(x - 1, 1 - a) is None
    assert match(x / 2, 2 / a) is None


def test_a_failed_first_order_leaves_no_binding_behind():
    """add(x, exp(x)) against add(exp(a), a): trying x = exp(a) first must not stick."""
    a = vector("a")
    assert match(op.add(x, op.exp(x)), gx.exp(a) + a) == {"x": a}
    assert match(op.add(x, op.exp(x)), gx.exp(a) + vector("b")) is None


def test_nested_commutative_matches_find_the_order_that_fits_the_rest():
    a, b = vector("a"), vector("b")
    assert match(op.add(op.mul(x, y), x), b * a + b) == {"x": b, "y": a}
    assert match(op.add(op.mul(x, y), x), a * b + a) == {"x": a, "y": b}


def test_an_inner_commutative_match_is_retried_when_the_outer_one_fails():
    a, b = vector("a"), vector("b")
    assert match(op.add(op.mul(x, y), x), a * b + b) == {"x": b, "y": a}
    assert match(op.add(op.mul(x, y), x), b + b * a) == {"x": b, "y": a}
    assert match(op.add(op.mul(x, y), x), a * b + gx.exp(a)) is None


@pytest.mark.parametrize("value, number, matches", [
    (1.0, 1, True),
    ([1.0, 1.0], 1, True),
    (np.ones((2, 3), np.float32), 1, True),
    ([1, 1], 1, True),  # an int constant equal to 1 everywhere
    ([1.0, 2.0], 1, False),  # not equal everywhere
    (2.0, 1, False),
    (np.zeros((0,)), 0, False),  # no elements: "equal everywhere" would be vacuous
    (np.array([-0.0, 0.0]), 0, True),
    (np.nan, np.nan, False),  # nan equals nothing, itself included
])
def test_numbers_match_constants_equal_to_them_everywhere(value, number, matches):
    c = gx.constant(value)
    assert is_constant_equal_to(c, number) is matches
    assert (match(op.exp(number), gx.exp(c)) is not None) is matches


def test_numbers_never_match_computed_nodes():
    a = vector("a")
    assert not is_constant_equal_to(a, 0)
    assert constant_value(a) is None
    assert match(x * 1, a * a) is None
    np.testing.assert_array_equal(constant_value(gx.constant([1.0, 2.0])), [1.0, 2.0])


def test_attribute_patterns_bind_and_compare_attribute_values():
    t = gx.input("t", (2, 3), "float64")
    s = gx.softmax(t, -1)
    assert match(op.softmax(x, axis=Var("a")), s) == {"x": t, "a": (1,)}
    assert match(op.softmax(x, no_such_attribute=Var("a")), s) is None
    # numbers (bools included) compare with attribute values
    total = gx.sum(t, 1, keepdims=True)
    assert match(op.sum(x, axis=Var("a"), keepdims=True), total) == {"x": t, "a": (1,)}
    assert match(op.sum(x, axis=Var("a"), keepdims=False), total) is None


def test_a_var_shared_by_an_attribute_and_an_input_compares_values():
    t = gx.input("t", (2, 3), "float64")
    same = Var("axis")
    pattern = op.add(op.sum(x, axis=same, keepdims=True), op.max(y, axis=same, keepdims=True))
    assert match(pattern, gx.sum(t, 1, keepdims=True) + gx.max(t, 1, keepdims=True)) == \
        {"x": t, "y": t, "axis": (1,)}
    assert match(pattern, gx.sum(t, 1, keepdims=True) + gx.max(t, 0, keepdims=True)) is None


def test_where_guards_restrict_what_a_var_matches():
    a, n = vector("a"), gx.input("n", (2,), "int32")
    floats = Var("f", where=lambda t: t.dtype == "float64")
    assert match(op.neg(floats), -a) == {"f": a}
    assert match(op.neg(floats), -n) is None
    last_axis = Var("axis", where=lambda axes: axes == (1,))
    t = gx.input("t", (2, 3), "float64")
    assert match(op.softmax(x, axis=last_axis), gx.softmax(t, -1)) is not None
    assert match(op.softmax(x, axis=last_axis), gx.softmax(t, 0)) is None


def test_a_guard_is_not_asked_again_for_a_bound_var():
    calls = []
    guarded = Var("g", where=lambda t: calls.append(t) or True)
    a = vector("a")
    assert match(guarded * guarded, a * a) == {"g": a}
    assert calls == [a]


def test_given_bindings_are_respected_and_not_modified():
    a, b = vector("a"), vector("b")
    given = {"x": b}
    assert match(x + y, a + b, given) == {"x": b, "y": a}  # commuted to fit x = b
    assert match(x - y, a - b, given) is None
    assert given == {"x": b}


def test_arity_and_op_must_agree():
    a = vector("a")
    assert match(op.exp(x), gx.log(a)) is None
    assert match(op.add(x), a + a) is None
    assert match(op.exp(x), 3.0) is None  # an attribute value is not a node


def test_things_that_are_not_patterns_are_refused():
    with pytest.raises(TypeError, match="not a pattern"):
        match("exp", vector("a"))


def test_root_op():
    assert root_op_of(op.exp(x) * 2) == "mul"
    assert root_op_of(op.log(x)) == "log"
    assert root_op_of(x) is None


def test_patterns_print_as_the_algebra_they_are():
    assert repr(op.log(op.softmax(x, axis=Var("a")))) == "log(softmax(x, axis=a))"
    assert repr(-(x ** 2) / y) == "div(neg(pow(x, 2)), y)"


def test_instantiate_builds_the_nodes_hash_consed_with_hand_built_ones():
    a, b = vector("a"), vector("b")
    built = instantiate(op.exp(x) * 2 - y, {"x": a, "y": b})
    assert built is gx.exp(a) * 2 - b
    t = gx.input("t", (2, 3), "float64")
    assert instantiate(op.softmax(x, axis=Var("a")), {"x": t, "a": (0,)}) is gx.softmax(t, 0)
    assert instantiate(3.0, {}) == 3.0


def test_instantiate_of_a_match_rebuilds_the_matched_node():
    a, b = vector("a"), vector("b")
    node = gx.tanh(a * b) + 1
    pattern = op.tanh(x * y) + 1
    assert instantiate(pattern, match(pattern, node)) is node


def test_instantiated_values_are_right():
    a = gx.input("a", (3,), "float64")
    value = np.array([0.5, -1.0, 2.0])
    built = instantiate(op.exp(x) * 2 - x, {"x": a})
    np.testing.assert_allclose(gx.compile([a], built)(value), np.exp(value) * 2 - value)
