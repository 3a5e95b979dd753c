"""The auto-title rule, on its own."""

import pytest

from chatkeep.sessions.titles import title_from_text
from chatkeep.text import content_text


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Hello", "Hello"),
        ("  Hello    world  \nsecond line", "Hello world"),
        ("\n\n   \nfirst real line\nmore", "first real line"),
        ("x" * 60, "x" * 60),
        ("word " * 30, ("word " * 12).strip() + "…"),
        ("y" * 100, "y" * 59 + "…"),
        ("", None),
        ("   \n  ", None),
    ],
)
def test_title_from_text(text, title):
    assert title_from_text(text) == title
    if title:
        assert len(title) <= 60


def test_cut_at_word_boundary_strips_trailing_punctuation():
    title = title_from_text("Please summarise, the attached quarterly figures, for the board meeting today")
    assert title == "Please summarise, the attached quarterly figures, for the…"


def test_content_text_of_parts():
    parts = [{"type": "text", "text": "look at"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "this"}]
    assert content_text(parts) == "look at\nthis"
    assert content_text(None) == ""
