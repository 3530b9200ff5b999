"""Hybrid fusion with the real default model on small folders: scores that fall down the
list, one common word that cannot beat a strong meaning match, phrases and rare words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localsearch.core.searcher import KEYWORD_FLOOR, RELEVANCE_FLOOR, Searcher, calibration_for
from localsearch.core.service import LocalSearch
from localsearch.core.storage import Index

HANDBOOK_SECTION = (
    "Business travel must be approved by your manager before booking. Book trains for journeys "
    "under four hours and economy class for flights. Hotels are booked through the travel desk. "
    "Meals are reimbursed against receipts up to the daily allowance. Submit expense claims within "
    "thirty days with photos of every receipt. "
)
FILES = {
    "notes/cat-sitter.txt": "Henrietta feeds the kitten and empties its litter tray while we are away.",
    "notes/router.txt": "Router model KX-4471: hold the pin-hole button for 30 seconds to reset it.",
    "notes/modem-help.txt": "When the modem lights blink, unplug it, wait a minute and plug it back in.",
    "notes/leak.txt": "The flat upstairs had a burst pipe; our hallway ceiling is stained. Claim 55-20931",
    "notes/plants.txt": "Water the fig every Sunday when the top soil is dry; succulents once a month.",
    "recipes/soup.md": "# Lentil soup\n\nSoften onion and carrot, add red lentils, stock, tomatoes; simmer.",
    "work/handbook.md": "# Employee handbook\n\n" + "\n\n".join(HANDBOOK_SECTION for _ in range(6)),
    "work/pipes.txt": "Pipe fittings catalogue: copper pipe, burst repair clamps, compression joints.",
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, default_model: Path) -> Iterator[LocalSearch]:
    import os

    home = tmp_path_factory.mktemp("fusion-home")
    docs = tmp_path_factory.mktemp("fusion-docs")
    for name, text in FILES.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    saved = os.environ.get("LOCALSEARCH_HOME")
    os.environ["LOCALSEARCH_HOME"] = str(home)
    try:
        with LocalSearch(keep_vectors=True, for_queries=True) as ls:
            for _ in ls.index_paths([docs]):
                pass
            yield ls
    finally:
        if saved is not None:
            os.environ["LOCALSEARCH_HOME"] = saved


def _names(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.name for h in hits]


QUERIES = [
    "who looks after the cat while we travel",
    "how to reset the modem when it flashes",
    "water damage from the neighbours above",
    "cheap vegetarian soup",
    "can I claim a taxi on expenses",
    "burst pipe",
]


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
@pytest.mark.parametrize("query", QUERIES)
def test_scores_fall_down_the_list_and_weak_ones_come_last(
    service: LocalSearch, mode: str, query: str
) -> None:
    hits = service.search(query, 20, mode=mode)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    weak = [h.weak for h in hits]
    assert weak == sorted(weak)  # once weak, the rest are weaker still
    for h in hits:
        assert -1.0 <= h.cosine <= 1.0
        if mode == "hybrid":
            assert 0.0 <= h.score <= 1.0 and h.scale == "relevance"
            assert h.weak == (h.score < RELEVANCE_FLOOR)
        elif mode == "keyword":
            assert h.keyword is not None and h.bm25 is not None and h.bm25 > 0
            assert h.weak == (h.score < KEYWORD_FLOOR)
        else:
            assert h.score == pytest.approx(h.cosine, abs=1e-6) and h.scale == "cosine"


def test_one_common_word_never_beats_a_strong_meaning_match(service: LocalSearch) -> None:
    query = "who looks after the cat while we travel"
    semantic = service.search(query, 10, mode="semantic")
    assert semantic[0].name == "cat-sitter.txt"
    handbook = next(h for h in semantic if h.name == "handbook.md")
    assert semantic[0].cosine - handbook.cosine > 0.1  # meaning clearly prefers the note
    hybrid = service.search(query, 10)
    assert hybrid[0].name == "cat-sitter.txt"
    words = next(h for h in hybrid if h.name == "handbook.md")
    # "travel" is one word of the query's four and appears all over the handbook: a
    # small share of the query's keyword weight, not a full keyword score.
    assert words.keyword is not None and 0 < words.keyword < 0.5
    assert words.score < hybrid[0].score


def test_every_candidate_carries_both_signals(service: LocalSearch) -> None:
    hits = service.search("burst pipe ceiling", 10)
    by_name = {h.name: h for h in hits}
    # leak.txt holds both words; the note about plants holds neither but is still ranked by
    # meaning, with its cosine and no keyword score.
    assert by_name["leak.txt"].keyword is not None and by_name["leak.txt"].keyword > 0.5
    assert all(h.cosine != 0.0 for h in hits)  # keyword-only files got their true cosine too
    assert any(h.keyword is None for h in hits)


def test_quoted_phrase_must_match_literally_in_every_mode(service: LocalSearch) -> None:
    for mode in ("hybrid", "semantic", "keyword"):
        hits = service.search('"burst pipe"', 10, mode=mode)
        assert _names(hits) == ["leak.txt"]  # pipes.txt has both words, not the phrase


@pytest.mark.parametrize(
    ("query", "expected"),
    [("KX-4471", "router.txt"), ("Henrietta", "cat-sitter.txt"), ("55-20931", "leak.txt")],
)
def test_a_rare_word_ranks_its_exact_hits_first(service: LocalSearch, query: str, expected: str) -> None:
    hits = service.search(query, 10)  # the default mode, no option
    assert hits[0].name == expected
    assert not hits[0].weak
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(query.lower() not in h.snippet.lower() for h in hits[1:])


def test_calibration_reads_cosines_in_order() -> None:
    calibration = calibration_for("all-minilm-l6-v2@3L+late")
    values = [calibration.relevance(c) for c in (-0.2, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] == 1.0
    # The weak floor of semantic mode is a share of the relevant pairs: the median's cosine.
    assert calibration.cosine_at(0.5) == pytest.approx(calibration.quantiles[len(calibration.quantiles) // 2])


def test_terms_held_match_as_the_index_matches(service: LocalSearch) -> None:
    index: Index = service.index
    texts = {1: "The pipes burst in the cold.", 2: "A ceiling stain.", 3: "Nothing here."}
    held = index.terms_held(["pipe", "bursting", "ceiling", "kx-4471"], texts)
    # Stemmed as the index stems: "pipe" finds "pipes" and "bursting" finds "burst".
    assert held == {1: {"pipe", "bursting"}, 2: {"ceiling"}}
    found = {h.chunk_id for h in index.keyword_chunks('"ceiling"', 10)}
    assert found and all("ceiling" in index.terms_held(["ceiling"], {c: "a ceiling"})[c] for c in found)


def test_terms_held_without_a_table_answer_as_the_table_does(tmp_path: Path) -> None:
    """terms_held stems only the words that could share a query word's stem; a scratch
    full-text table of the whole passages is the reference, text by text."""
    index = Index.open(tmp_path / "index.sqlite3")
    texts = {
        1: "Relational databases: the relations relate; conditional hopping, hoped, happily.",
        2: "naïve café Élan β-blocker αβ μg KX-4471 Straße İstanbul ｆｕｌｌ ﬁnance",
        3: "the naive cafe elan beta_blocker kx 4471 sensibility sensible probabilities",
        4: "Kelvin (\u212a) degrees, 10s and 1990s, ponies, cries, agreed, generalization",
        5: "x" * 70 + " ies sses s e",
        6: "",
    }
    terms = [
        "relational", "relate", "hop", "happy", "naive", "cafe", "élan", "beta", "blocker",
        "μg", "kx-4471", "strasse", "istanbul", "full", "finance", "sensible", "probability",
        "kelvin", "10", "1990", "pony", "cry", "agree", "general", "x" * 70, "ies", "s",
    ]  # fmt: skip
    expected = index._terms_held_by_table(terms, texts)
    assert index.terms_held(terms, texts) == expected
    assert expected[1] >= {"relational", "relate", "hop"} and "kx-4471" in expected[2]
    # Each term alone, and again with the stems now memoized.
    for term in terms:
        assert index.terms_held([term], texts) == index._terms_held_by_table([term], texts)
    index.close()


def test_evidence_read_on_the_keyword_lane_changes_no_result(
    service: LocalSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keyword lane reads its hits' vectors and held terms on its own thread (see
    Searcher._lane_keyword); with that turned off, every passage is read after both lanes,
    and every result, score and passage must be the same."""
    queries = [*QUERIES, "KX-4471", '"burst pipe" ceiling', "travel expenses receipts", "pipe"]
    with_lane = [[h.as_dict() for h in service.search(q, 10, mode="hybrid")] for q in queries]
    lane_keyword = Searcher._lane_keyword

    def without_evidence(self: Searcher, *args: object) -> object:
        return lane_keyword(self, *args[:-1], False)  # type: ignore[arg-type]

    monkeypatch.setattr(Searcher, "_lane_keyword", without_evidence)
    after_both = [[h.as_dict() for h in service.search(q, 10, mode="hybrid")] for q in queries]
    assert after_both == with_lane
    assert all(with_lane[:6])
