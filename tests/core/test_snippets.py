"""The line shown under a result and the words marked in it."""

from __future__ import annotations

from localsearch.core.snippets import make_snippet


def test_snippet_window_follows_the_query_words() -> None:
    text = "filler " * 200 + "the submarine dives under arctic ice " + "filler " * 200
    snippet, marks = make_snippet(text, "arctic submarine")
    assert "submarine dives under arctic" in snippet and snippet.startswith("… ")
    assert {snippet[a:b] for a, b in marks} == {"submarine", "arctic"}


def test_snippets_drop_markdown_heading_marks() -> None:
    snippet, spans = make_snippet(
        "# Travel\n\n## Documents\n\nRenew the passport.\n\nNotes\n=====\n\nC# #12", "passport"
    )
    assert snippet == "Travel Documents Renew the passport. Notes C# #12"
    assert [snippet[a:b] for a, b in spans] == ["passport"]
