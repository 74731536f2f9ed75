"""coach.text: cleaning user questions (QueryError says what to do) and BM25 tokens."""

from __future__ import annotations

import pytest

from coach.text import MAX_QUERY_CHARS, QueryError, clean_query, normalize, tokenize


@pytest.mark.parametrize("text", ["", "   ", "\t\n \r\n", "\u200b\u200d\ufeff", "\x00\x01\x7f"])
def test_empty_question(text):
    with pytest.raises(QueryError, match="the question is empty: type a question"):
        clean_query(text)


def test_huge_question_is_rejected_without_normalising_it():
    with pytest.raises(QueryError) as err:
        clean_query("注" * 100_000)
    assert "100,000 characters" in str(err.value)
    assert f"the limit is {MAX_QUERY_CHARS:,}" in str(err.value)
    assert "one topic at a time" in str(err.value)


def test_length_limit_applies_after_cleaning():
    assert clean_query("a" * 10, max_chars=10) == "a" * 10
    assert clean_query("a" * 10 + "\u200b" * 5, max_chars=10) == "a" * 10  # zero-width chars do not count
    with pytest.raises(QueryError, match="the question is 11 characters; the limit is 10"):
        clean_query("a" * 11, max_chars=10)
    with pytest.raises(QueryError, match="3,000 characters; the limit is 2,000"):
        clean_query("a" * 3000)


def test_control_characters_become_spaces():
    assert clean_query("KV\x00Cache\x07原理\x1b") == "KV Cache 原理"
    assert clean_query("KV\r\n\tCache") == "KV Cache"


def test_zero_width_characters_are_removed():
    assert clean_query("K\u200bV\u200d Cache\ufeff原\u00ad理") == "KV Cache原理"


def test_full_width_forms_fold():
    assert clean_query("ＫＶ") == "KV"
    assert clean_query("  ＫＶ\u200b Cache？ ") == "KV Cache?"  # the module docstring's example
    assert clean_query("ＬｏＲＡ　原理１２３") == "LoRA 原理123"  # ideographic space too


@pytest.mark.parametrize("text", ["😀", "🚀🔥👍", "👨\u200d👩\u200d👧", "？！…。", "?!...", "——「」《》"])
def test_wordless_question(text):
    with pytest.raises(QueryError, match="the question has no letters or digits to search for: type a question in words"):
        clean_query(text)


def test_non_text_is_a_query_error():
    with pytest.raises(QueryError, match="must be text, not int"):
        clean_query(42)  # type: ignore[arg-type]


def test_lone_surrogate_does_not_crash():
    out = clean_query("KV\ud800 Cache")
    assert out.startswith("KV") and out.endswith("Cache")
    out.encode("utf-8")  # the result is valid text
    assert tokenize("KV\udfff Cache") == ["kv", "cache"]


def test_normalize_collapses_whitespace():
    assert normalize("  a \n\n b\t c  ") == "a b c"


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("KV Cache 的原理？", ["kv", "cache", "原理"]),  # the module docstring's example
        ("The KV Cache is what?", ["kv", "cache"]),
        ("What is the LoRA rank, and why does it matter?", ["lora", "rank", "matter"]),
        ("ＢＭ２５!!! ... ,,,", ["bm25"]),
        ("的 了 是 什么 ？ the a of", []),
    ],
)
def test_tokenize_lowercases_and_drops_stopwords_and_punctuation(text, tokens):
    assert tokenize(text) == tokens


def test_the_term_lexicon_keeps_machine_learning_terms_whole():
    from coach.text import LEXICON, TOKENIZER_ID

    assert LEXICON.exists() and TOKENIZER_ID.startswith("jieba+") and TOKENIZER_ID != "jieba+none"
    # jieba alone splits these ("感受" + "野"); search mode still adds the parts, so partial matches stay
    assert {"感受野", "感受"} <= set(tokenize("卷积神经网络的感受野怎么计算？"))
    assert "旋转位置编码" in tokenize("旋转位置编码和 ALiBi 哪个好")
    assert tokenize("我们今天讨论时间和方法的问题") == ["今天", "讨论", "时间", "方法", "问题"]  # everyday text as before
