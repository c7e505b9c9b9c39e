"""Matcher: add, replace, remove, len, and matching across many rules."""

from __future__ import annotations

from typing import Any

from ondo.patterns import Matcher, compile

EVENT = {
    "specversion": "1.0",
    "id": "e1",
    "source": "/clinic/ward-3",
    "type": "com.clinic.vitals.recorded",
    "subject": "patient/42",
    "data": {"systolic": 150, "diastolic": 95, "unit": "mmHg", "device": "10.1.2.3"},
}


def test_empty_matcher_matches_nothing() -> None:
    matcher = Matcher()
    assert len(matcher) == 0
    assert matcher.matching(EVENT) == set()


def test_each_operator_kind_over_one_event() -> None:
    matcher = Matcher()
    rules = {
        "exact": {"type": ["com.clinic.vitals.recorded"]},
        "prefix": {"type": [{"prefix": "com.clinic."}]},
        "suffix": {"subject": [{"suffix": "/42"}]},
        "ic": {"data": {"unit": [{"equals-ignore-case": "MMHG"}]}},
        "range": {"data": {"systolic": [{"numeric": [">", 140, "<=", 180]}]}},
        "cidr": {"data": {"device": [{"cidr": "10.1.0.0/16"}]}},
        "wildcard": {"source": [{"wildcard": "/clinic/*-3"}]},
        "anything-but": {"data": {"unit": [{"anything-but": "kPa"}]}},
        "absent": {"data": {"pulse": [{"exists": False}]}, "type": [{"exists": True}]},
        "or": {"$or": [{"data": {"diastolic": [{"numeric": [">", 90]}]}}, {"id": ["x"]}]},
        "miss-exact": {"type": ["com.clinic.vitals.deleted"]},
        "miss-range": {"data": {"systolic": [{"numeric": ["<", 140]}]}},
        "miss-and": {"type": ["com.clinic.vitals.recorded"], "subject": ["patient/7"]},
        "miss-absent": {"data": {"unit": [{"exists": False}]}},
    }
    for rule_id, pattern in rules.items():
        matcher.add(rule_id, pattern)
    assert len(matcher) == len(rules)
    expected = {rule_id for rule_id in rules if not rule_id.startswith("miss-")}
    assert matcher.matching(EVENT) == expected


def test_add_replaces_a_rule_with_the_same_id() -> None:
    matcher = Matcher()
    matcher.add("r", {"type": ["com.clinic.vitals.deleted"]})
    matcher.add("r", {"type": ["com.clinic.vitals.recorded"]})
    assert len(matcher) == 1
    assert matcher.matching(EVENT) == {"r"}


def test_remove_and_removing_twice() -> None:
    matcher = Matcher()
    matcher.add("a", {"type": ["com.clinic.vitals.recorded"]})
    matcher.add("b", {"type": ["com.clinic.vitals.recorded"], "subject": ["patient/42"]})
    matcher.remove("a")
    matcher.remove("a")
    assert "a" not in matcher and "b" in matcher
    assert matcher.matching(EVENT) == {"b"}
    matcher.remove("b")
    assert len(matcher) == 0
    assert matcher.matching(EVENT) == set()


def test_shared_conditions_survive_removal_of_one_rule() -> None:
    matcher = Matcher()
    prefix = {"type": [{"prefix": "com.clinic."}], "data": {"unit": ["mmHg"]}}
    matcher.add("one", prefix)
    matcher.add("two", prefix)
    matcher.remove("one")
    assert matcher.matching(EVENT) == {"two"}


def test_accepts_json_text_and_compiled_patterns() -> None:
    matcher = Matcher()
    matcher.add("text", '{"subject": ["patient/42"]}')
    matcher.add("compiled", compile({"subject": ["patient/42"]}))
    assert matcher.matching(EVENT) == {"text", "compiled"}
    assert matcher.pattern("text").matches(EVENT)


def test_or_alternatives_of_one_rule_report_it_once() -> None:
    matcher = Matcher()
    matcher.add("r", {"$or": [{"subject": ["patient/42"]}, {"id": ["e1"]}]})
    assert matcher.matching(EVENT) == {"r"}
    matcher.remove("r")
    assert matcher.matching(EVENT) == set()


def test_array_consistency_in_the_matcher() -> None:
    matcher = Matcher()
    matcher.add("same", {"data": {"readings": {"kind": ["bp"], "value": [150]}}})
    matcher.add("mixed", {"data": {"readings": {"kind": ["bp"], "value": [70]}}})
    event = {"data": {"readings": [{"kind": "bp", "value": 150}, {"kind": "pulse", "value": 70}]}}
    assert matcher.matching(event) == {"same"}


def test_many_rules_only_matching_ones_reported() -> None:
    matcher = Matcher()
    for number in range(2000):
        matcher.add(f"t{number}", {"type": [f"com.clinic.t{number}"], "data": {"n": [number]}})
        matcher.add(f"r{number}", {"data": {"systolic": [{"numeric": [">=", number]}]}})
    event = {"type": "com.clinic.t7", "data": {"n": 7, "systolic": 3}}
    assert matcher.matching(event) == {"t7", "r0", "r1", "r2", "r3"}


def test_event_keys_that_no_rule_names_are_ignored() -> None:
    matcher = Matcher()
    matcher.add("r", {"data": {"unit": ["mmHg"]}})
    event = {**EVENT, "data": {**EVENT["data"], "big": {"nested": [list(range(50))]}}}
    assert matcher.matching(event) == {"r"}


def test_large_array_of_objects_same_element_rule() -> None:
    """Fields must meet in one element; the one element where they do is the last."""
    items = [{"sku": "a", "qty": 1, "flag": False} for _ in range(3000)]
    items[-1] = {"sku": "b", "qty": 5, "flag": True}
    event = {"data": {"items": items}}
    pattern = {"data": {"items": {"sku": ["b"], "qty": [{"numeric": [">", 2]}], "flag": [True]}}}
    mixed = {"data": {"items": {"sku": ["a"], "qty": [5]}}}
    matcher = Matcher()
    matcher.add("last", pattern)
    matcher.add("mixed", mixed)
    assert matcher.matching(event) == {"last"}
    assert compile(pattern).matches(event) and not compile(mixed).matches(event)


def test_an_index_of_many_operators_remembers_values_and_forgets_them_on_change() -> None:
    """Past 32 operators on one path, string results are remembered per value; adding or
    removing a rule must not leave a stale answer behind."""
    matcher = Matcher()
    patterns: dict[str, dict[str, Any]] = {}
    for number in range(40):
        patterns[f"p{number}"] = {"type": [{"prefix": f"com.app{number}."}]}
        patterns[f"i{number}"] = {"type": [{"equals-ignore-case": f"COM.APP{number}.X"}]}
    for rule_id, pattern in patterns.items():
        matcher.add(rule_id, pattern)
    events: list[dict[str, Any]] = [{"type": f"com.app{n}.x"} for n in (1, 12, 39, 40)]
    events += [{"type": 7}, {"type": None}]

    def expected() -> list[set[str]]:
        return [
            {rule_id for rule_id, p in patterns.items() if compile(p).matches(event)}
            for event in events
        ]

    for _ in range(2):  # the second pass answers from what was remembered
        assert [matcher.matching(event) for event in events] == expected()
    assert matcher.matching({"type": "com.app1.x"}) == {"p1", "i1"}
    matcher.remove("p1")
    del patterns["p1"]
    patterns["late"] = {"type": [{"prefix": "com.app1"}]}
    matcher.add("late", patterns["late"])
    assert [matcher.matching(event) for event in events] == expected()
    assert matcher.matching({"type": "com.app12.x"}) == {"late", "p12", "i12"}
    assert matcher.matching({"type": "com.app1.x"}) == {"late", "i1"}


def test_rules_listing_several_types_share_states_and_leave_none_behind() -> None:
    """Rules listing several types, alone and among $or alternatives that repeat one another:
    matching, replacing and removing them leaves no state behind."""
    matcher = Matcher()
    matcher.add("both", {"type": ["A", "B"], "data": {"n": [1]}})
    matcher.add("a", {"type": ["A"], "data": {"n": [1]}})
    matcher.add("dup", {"$or": [{"type": ["A", "B"]}, {"type": ["A"]}], "data": {"n": [1]}})
    matcher.add("arr", {"type": ["B", "C"], "data": {"n": [2]}})
    assert matcher.matching({"type": "A", "data": {"n": 1}}) == {"both", "a", "dup"}
    assert matcher.matching({"type": "B", "data": {"n": 1}}) == {"both", "dup"}
    assert matcher.matching({"type": ["C", "X"], "data": {"n": [5, 2]}}) == {"arr"}
    matcher.remove("dup")
    matcher.add("both", {"type": ["B", "A"], "data": {"n": [2]}})
    assert matcher.matching({"type": "A", "data": {"n": 1}}) == {"a"}
    assert matcher.matching({"type": "A", "data": {"n": 2}}) == {"both"}
    for rule_id in ("both", "a", "arr"):
        matcher.remove(rule_id)
    assert len(matcher) == 0
    assert matcher.matching({"type": "A", "data": {"n": 1}}) == set()
    assert not matcher._root.edges  # every state the routes made is gone


def test_many_wildcards_on_one_path_are_filed_by_their_literal_ends() -> None:
    """Wildcards are only tried when their literal start (or, after a leading *, their end)
    fits the value; every shape must still match exactly as the pattern does alone."""
    shapes = ["/a/*", "/a/*.png", "*.png", "*", "*b*", "/a/b.png", "/a\\*", "*x\\*", "", "/*/*"]
    patterns = {f"w{n}": {"p": [{"wildcard": shape}]} for n, shape in enumerate(shapes)}
    patterns["mixed"] = {"p": [{"wildcard": "/c*"}, {"prefix": "/a/"}]}
    matcher = Matcher()
    for rule_id, pattern in patterns.items():
        matcher.add(rule_id, pattern)
    values = ["/a/b.png", "/a/", "/a*", "x.png", "", "zx*", "/c/d", "b", 5, None, "/a/b.pngx"]
    for value in values:
        event = {"p": value}
        expected = {rule_id for rule_id, p in patterns.items() if compile(p).matches(event)}
        assert matcher.matching(event) == expected, value
    for rule_id in ("w0", "w2", "w4", "w7"):
        matcher.remove(rule_id)
        del patterns[rule_id]
    for value in values:
        event = {"p": value}
        expected = {rule_id for rule_id, p in patterns.items() if compile(p).matches(event)}
        assert matcher.matching(event) == expected, value


def test_many_anything_but_values_on_one_path_exclude_only_their_own() -> None:
    """anything-but lists of exact values are found by what they exclude; every value type,
    5 == 5.0, null, booleans and a second anything-but on the same field must work as alone."""
    operands: list[Any] = ["a", ["a", "b"], 5, [5.0, 6], ["a", "a"], "", 0, [1, 2], "true"]
    patterns: dict[str, dict[str, Any]] = {
        f"n{n}": {"p": [{"anything-but": operand}]} for n, operand in enumerate(operands)
    }
    patterns["pair"] = {"p": [{"anything-but": "a"}, {"anything-but": "b"}]}
    patterns["with-prefix"] = {"p": [{"anything-but": ["x"]}, {"prefix": "x"}]}
    matcher = Matcher()
    for rule_id, pattern in patterns.items():
        matcher.add(rule_id, pattern)
    values: list[Any] = ["a", "b", "x", "", 5, 5.0, 6, 0, 1, True, False, None, "true", 7.5]

    def check() -> None:
        for value in values:
            event = {"p": value}
            expected = {rule_id for rule_id, p in patterns.items() if compile(p).matches(event)}
            assert matcher.matching(event) == expected, value

    check()
    for rule_id in ("n1", "n4", "pair"):
        matcher.remove(rule_id)
        del patterns[rule_id]
    check()


def test_a_path_spelled_twice_in_one_event_offers_both_leaves() -> None:
    """A dotted key and a nested object naming one path: either leaf may match (the plain walk
    takes one leaf per path, so such events take the general one)."""
    matcher = Matcher()
    matcher.add("y", {"a": {"b": ["y"]}, "n": [1]})
    matcher.add("x", {"a.b": [{"prefix": "x"}]})
    event = {"a.b": "x1", "a": {"b": "y"}, "n": 1}
    assert matcher.matching(event) == {"x", "y"}
    assert compile({"a": {"b": ["y"]}, "n": [1]}).matches(event)


def test_one_value_passing_two_operators_of_one_field() -> None:
    """["ab", {"prefix": "a"}] reaches one next state twice for "ab"; the rules after it are
    reported once and still need their own conditions."""
    matcher = Matcher()
    matcher.add("both", {"s": ["ab", {"prefix": "a"}], "n": [1]})
    matcher.add("other", {"s": [{"prefix": "a"}], "n": [2]})
    assert matcher.matching({"s": "ab", "n": 1}) == {"both"}
    assert matcher.matching({"s": "ax", "n": 2}) == {"other"}
    assert matcher.matching({"s": "ab", "n": 3}) == set()
