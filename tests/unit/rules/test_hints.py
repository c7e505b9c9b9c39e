"""Rule syntax errors that say what to write: lower-case keywords, near misses of actions."""

from __future__ import annotations

import pytest

from ondo.errors import RuleSyntaxError
from ondo.rules.parser import parse_rule


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("On order.placed do invoke ship", 'keywords are lower case: write "on"'),
        ("on order.placed DO invoke ship", 'keywords are lower case: write "do"'),
        ("on order.placed Where total > 1 do invoke ship", 'write "where"'),
        ("on order.placed where total > 1 Do invoke ship", 'write "do"'),
        ("on order.placed do Invoke ship", 'keywords are lower case: write "invoke"'),
        ("on order.placed do invok ship", 'did you mean "invoke"?'),
        ("on order.placed do emitt order.seen", 'did you mean "emit"?'),
        ("on order.placed do notfy bob", 'did you mean "notify"?'),
    ],
)
def test_the_error_says_what_to_write(text: str, hint: str) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(text)
    assert hint in str(caught.value)


def test_a_word_far_from_every_action_lists_the_actions() -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule("on order.placed do frobnicate ship")
    assert "did you mean" not in str(caught.value)
    assert "actions are invoke, emit" in str(caught.value)
