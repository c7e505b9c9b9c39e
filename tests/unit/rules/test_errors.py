"""Every mistake is reported with its 1-based column and a hint on how to fix it."""

from __future__ import annotations

import pytest

from ondo.errors import RuleError, RuleSyntaxError
from ondo.rules.model import parse_rule


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "on health.blood_pressure where systolic > 140 notify bob",
            'expected "do" after the condition at column 47',
        ),
        ("on t where systolic => 140 do invoke f", 'unknown operator "=>" at column 21'),
        ("on t where systolic => 140 do invoke f", '(did you mean ">="?)'),
        ("on t where x = 1 do invoke f", '(did you mean "=="?)'),
        ("on t where x <> 1 do invoke f", '(did you mean "!="?)'),
        ("on t where x && y do invoke f", '(did you mean "and"?)'),
        ('on t where name == "alice do invoke f', "unterminated string at column 20"),
        ("on t where name == 'alice do invoke f", "add the closing '"),
        ("where x > 1 do invoke f", 'expected "on" at the start of the rule at column 1'),
        ("on t where x > 1 do", 'expected an action after "do", found the end of the rule'),
        (
            "on t do notify bob cc alice and carol",
            "column 33 (actions are invoke, emit, notify, bcc, forward, webhook, mqtt; "
            'to copy several people write "notify bob cc alice, carol")',
        ),
        ("on t do invoke f with [1]", 'expected a JSON object after "with", found "["'),
        ('on t do invoke f with {"a": }', "invalid JSON (Expecting value) at column 29"),
        ("on t where (x > 1 do invoke f", 'expected ")" to close the parenthesis at column 19'),
        ("on t where x do invoke f", 'expected an operator after "x" at column 14'),
        ("on t 3 times within 30 days do invoke f", 'expected a duration, found "30" at column 21'),
        ("on t from a from b do invoke f", '"from" given twice at column 13'),
        ("on do invoke f", "expected an event type at column 4"),
        ("on t where $Subject == 1 do invoke f", '"$Subject" is not an event attribute'),
        ("on t where a*b == 1 do invoke f", '"a*b" is not a field name at column 12'),
        ("on t do invoke f extra", 'unexpected "extra" after the actions at column 18'),
        ("on t where x > 1 at least once per 1h do invoke f", 'expected "most" after "at"'),
        ("on t where x ? 1 do invoke f", 'unexpected character "?" at column 14'),
        (r'on t where x == "a\q" do invoke f', r'unknown escape "\q" at column 19'),
        ("on t about alice", 'expected "do" after the event type at column 17'),
        ("on t 3 times do invoke f", 'expected "within" after "times" at column 14'),
        ("on t do emit alert.*", 'cannot emit "alert.*" at column 9'),
        ("on t where x > 1e400 do invoke f", "the number 1e400 is too large at column 16"),
    ],
)
def test_syntax_errors_name_the_column(text: str, message: str) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'on t where systolic > "high" do invoke f',
            'field "systolic" is compared with "high" using ">" at column 23, '
            'but ">" compares numbers',
        ),
        ("on t where x > true do invoke f", 'field "x" is compared with "true"'),
        ("on t where 1 == 2 do invoke f", "1 == 2 at column 12 compares two values"),
        ("on t where x in 5 do invoke f", '"in" at column 14 needs a field and a list'),
        ("on t where x in [] do invoke f", "the list at column 17 is empty"),
        ("on t where key endswith 5 do invoke f", '"endswith" needs text in quotes'),
        ("on t where x > [1] do invoke f", 'a list can only follow "in", not ">" (column 16)'),
        ("on t where 3 exists do invoke f", '"exists" at column 14 needs a field before it'),
    ],
)
def test_type_errors_name_field_and_column(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert not isinstance(caught.value, RuleSyntaxError)
    assert message in str(caught.value)
