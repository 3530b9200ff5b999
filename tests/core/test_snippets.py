"""The line shown under a result and the words marked in it."""

from __future__ import annotations

from localsearch.core.snippets import highlight_spans, make_snippet, stem
from localsearch.core.storage import Index


def test_snippet_window_follows_the_query_words() -> None:
    text = "filler " * 200 + "the submarine dives under arctic ice " + "filler " * 200
    snippet, marks = make_snippet(text, "arctic submarine")
    assert "submarine dives under arctic" in snippet and snippet.startswith("… ")
    assert {snippet[a:b] for a, b in marks} == {"submarine", "arctic"}
    assert marks == highlight_spans(snippet, "arctic submarine")  # the window's, moved


def test_snippets_drop_markdown_heading_marks() -> None:
    snippet, spans = make_snippet(
        "# Travel\n\n## Documents\n\nRenew the passport.\n\nNotes\n=====\n\nC# #12", "passport"
    )
    assert snippet == "Travel Documents Renew the passport. Notes C# #12"
    assert [snippet[a:b] for a, b in spans] == ["passport"]


def _marked(text: str, query: str) -> list[str]:
    snippet, spans = make_snippet(text, query)
    return [snippet[a:b] for a, b in spans]


def test_pasta_does_not_mark_paste() -> None:
    text = "Cook the pasta al dente, then stir in the tomato paste and a spoon of pasta water."
    assert _marked(text, "pasta") == ["pasta", "pasta"]
    assert _marked(text, "paste") == ["paste"]


def test_other_forms_of_a_word_are_marked_by_its_stem() -> None:
    text = "She runs every morning; running keeps her calm, and one run is never enough. A runner waits."
    # "runner" is its own stem for Porter (and FTS5): not a form of "run".
    assert _marked(text, "running") == ["runs", "running", "run"]
    assert _marked(text, "renewing passports") == []
    assert _marked("Renew the passport before the renewal date.", "renewing passports") == [
        "Renew",
        "passport",
        "renewal",
    ]


def test_filler_words_are_not_marked() -> None:
    text = "We should cook the pasta before our guests arrive, and our guests should bring wine."
    assert _marked(text, "what should I cook before our guests arrive") == [
        "cook",
        "guests",
        "arrive",
        "guests",
    ]
    # A query of nothing but filler words marks them: there is nothing else to show.
    assert _marked("To be, or not to be.", "to be or not to be") == ["To", "be", "or", "not", "to", "be"]


def test_phrases_are_marked_as_typed_and_words_apart() -> None:
    snippet, spans = make_snippet("The lazy dog sleeps; a dog barks at the lazy cat.", '"lazy dog" barking')
    assert [snippet[a:b] for a, b in spans] == ["lazy dog", "barks"]
    assert spans == sorted(spans)
    snippet, spans = make_snippet("The lazy dog sleeps; a dog barks at the lazy cat.", '"lazy dog"')
    assert [snippet[a:b] for a, b in spans] == ["lazy dog"]  # its words apart are not the phrase


def test_diacritics_and_case_fold_as_the_index_folds_them() -> None:
    assert _marked("Le CAFÉ et les cafés; un café crème.", "cafe") == ["CAFÉ", "cafés", "café"]
    assert _marked("Dilute to 5 µM before use.", "μm") == ["µM"]  # micro sign and Greek mu


def test_stems_are_the_full_text_index_stems(index: Index) -> None:
    """The words a snippet marks are the words the keyword lane matched: both stem alike."""
    words = [
        *(
            "renewing renewal renew passports running runs pasta paste generalization caresses ponies "
            "relational conditional hopping happy agreed sized tomatoes glaciers retreating µM Éclair "
            "analyses analysis connected connection indexing indexes searched searches XJ 4471 is as the "
            "naïve coöperation İstanbul"
        ).split(),
        "relational" * 7,  # over 64 bytes: left unstemmed
    ]
    assert [stem(w) for w in words] == [tokens[0] for tokens in index.index_tokens(words)]
