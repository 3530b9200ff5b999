from __future__ import annotations

import itertools

from localsearch.core.chunking import chunk_document
from localsearch.core.extract import Document, Page
from tests.fakes import FakeEmbedder


def test_chunks_fit_the_limit_cover_the_text_and_keep_offsets() -> None:
    embedder = FakeEmbedder()
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60)]
    text = " ".join(sentences)
    chunks = chunk_document(Document([Page(text, None)]), embedder.tokenize, max_tokens=40, overlap=12)
    assert len(chunks) > 5
    for chunk in chunks:
        assert 0 < len(chunk.tokens) <= 40
        assert text[chunk.start_char : chunk.end_char] == chunk.text
        assert chunk.tokens == embedder.tokenize(chunk.text)
    assert chunks[0].start_char == 0
    assert chunks[-1].end_char == len(text.rstrip())
    # Neighbours overlap: each chunk starts before the previous one ends.
    assert all(b.start_char < a.end_char for a, b in itertools.pairwise(chunks))
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_each_chunk_says_how_many_leading_tokens_repeat_the_previous_one() -> None:
    embedder = FakeEmbedder()
    pages = [Page(" ".join(f"Line {i} of page {n} is here." for i in range(12)), n) for n in (1, 2)]
    pages.append(Page("# Head\n\n" + "Words in a section. " * 6 + "\n\n# Next\n\nMore words here.", 3))
    chunks = chunk_document(Document(pages), embedder.tokenize, max_tokens=20, overlap=8)
    assert chunks[0].overlap_tokens == 0
    for before, after in itertools.pairwise(chunks):
        shared = after.overlap_tokens
        if after.page != before.page or after.start_char >= before.end_char:
            assert shared == 0  # a new page or section carries nothing over
        else:
            assert 0 < shared <= 8 and after.tokens[:shared] == before.tokens[-shared:]
            assert before.text.endswith(after.text[: after.text.index(".") + 1])
    assert any(c.overlap_tokens for c in chunks)


def test_chunks_never_cross_pages_and_keep_their_page() -> None:
    embedder = FakeEmbedder()
    pages = [Page(f"Page {n} text. " * 20, n) for n in (1, 2, 3)]
    chunks = chunk_document(Document(pages), embedder.tokenize, max_tokens=16, overlap=4)
    assert {c.page for c in chunks} == {1, 2, 3}
    for chunk in chunks:
        assert f"Page {chunk.page} text." in chunk.text


def test_a_sentence_longer_than_the_limit_is_split_at_words() -> None:
    embedder = FakeEmbedder()
    text = " ".join(f"word{i}" for i in range(100))  # one sentence, no punctuation
    chunks = chunk_document(Document([Page(text, None)]), embedder.tokenize, max_tokens=16, overlap=0)
    assert all(len(c.tokens) <= 16 for c in chunks)
    assert sum(len(c.tokens) for c in chunks) == 100


def test_paragraph_boundaries_are_preferred() -> None:
    embedder = FakeEmbedder()
    text = "alpha beta gamma delta epsilon zeta\n\neta theta iota kappa lambda mu"
    chunks = chunk_document(Document([Page(text, None)]), embedder.tokenize, max_tokens=8, overlap=0)
    assert [c.text for c in chunks] == [
        "alpha beta gamma delta epsilon zeta",
        "eta theta iota kappa lambda mu",
    ]
