"""Text metrics on Chinese and mixed text, with hand-computed values (issue 17 §1): CMRC 2018's convention (Chinese
and ASCII punctuation removed, one token per CJK character, Latin words whole), jieba words as the option, and
rouge_l / the ragas adapters tokenizing the same way. English scores are those of tests/test_metrics.py."""

from __future__ import annotations

import pytest

from autorag_hp.evaluation.metrics import (
    UnknownMetricError,
    count_tokens,
    get_metric,
    normalize,
    text_tokens,
)
from autorag_hp.types import Answer, QAItem

# the issue's pair: the answer adds 自由的 ("free") to the reference
ANSWER = "Debian 是一个自由的操作系统，由志愿者维护。"
REFERENCE = "Debian 是一个操作系统，由志愿者维护。"
OTHER = "Debian 只支持一种处理器架构。"  # different content: shares only "Debian" and 一


def score(name: str, answer: str, reference: str) -> float | None:
    return get_metric(name)(Answer(answer), QAItem("q", answer=reference))


def test_cmrc_tokens_characters_latin_words_whole_punctuation_removed():
    # 17 answer tokens: debian + 10 characters of 是一个自由的操作系统 + 6 of 由志愿者维护 (，。 removed)
    assert text_tokens(ANSWER) == ["debian", *"是一个自由的操作系统", *"由志愿者维护"]
    assert text_tokens(REFERENCE) == ["debian", *"是一个操作系统", *"由志愿者维护"]  # 14 tokens
    # mixed text: Latin words stay whole and SQuAD-normalised (lower case, ASCII punctuation, articles)
    assert text_tokens("用 pip install 安装 the Requests 包") == ["用", "pip", "install", "安", "装", "requests", "包"]
    assert text_tokens("列表list是Python3.11的类型") == ["列", "表", "list", "是", "python311", "的", "类", "型"]
    # Chinese punctuation, full-width forms and the quotes Chinese shares with typography all go
    assert text_tokens("“列表”（list）是可变的！") == ["列", "表", "list", "是", "可", "变", "的"]
    # text without CJK characters keeps SQuAD's normalisation exactly, curly quotes included
    for s in ("The “quoted” text…", "Guido van Rossum, 1991.", "a  b\tc"):
        assert text_tokens(s) == normalize(s).split()


def test_the_issue_pair_scores_by_characters():
    # overlap: debian + 是一个操作系统 (7) + 由志愿者维护 (6) = 14 (由 twice in the answer, once in the reference)
    assert score("token_precision", ANSWER, REFERENCE) == pytest.approx(14 / 17)
    assert score("token_recall", ANSWER, REFERENCE) == 1.0
    assert score("token_f1", ANSWER, REFERENCE) == pytest.approx(28 / 31)  # 2·14 / (17 + 14); was 0.5
    # the reference is a subsequence of the answer: LCS = 14, P = 14/17, R = 1: the same 28/31; was 1.0
    assert score("rouge_l", ANSWER, REFERENCE) == pytest.approx(28 / 31)
    assert score("exact_match", ANSWER, REFERENCE) == 0.0
    assert score("answer_contains_reference", ANSWER, REFERENCE) == 0.0
    # different content: 11 tokens (debian + 10 characters), overlap debian and 一 = 2 -> 2·2/(11+14); was 0.5
    assert score("token_f1", OTHER, REFERENCE) == pytest.approx(4 / 25)
    assert score("token_f1", ANSWER, REFERENCE) > 5 * score("token_f1", OTHER, REFERENCE)


def test_mixed_text_known_values():
    a, r = "用 pip install 安装 the requests 包", "使用 pip 安装 requests"
    # answer 7 tokens, reference 6 (使 用 pip 安 装 requests), overlap 用 pip 安 装 requests = 5
    assert score("token_f1", a, r) == pytest.approx(10 / 13)
    # rouge_l keeps rouge_score's tokens ("the" stays): answer 8, LCS 用 pip 安 装 requests = 5
    assert score("rouge_l", a, r) == pytest.approx(2 * (5 / 8) * (5 / 6) / (5 / 8 + 5 / 6))
    assert score("exact_match", "“列表”是可变的。", "列表是可变的") == 1.0
    assert score("exact_match", "Debian是自由的", "debian 是自由的") == 1.0  # a space between scripts is no token
    assert score("answer_contains_reference", "元组由志愿者维护。", "志愿者，维护") == 1.0
    assert score("answer_contains_reference", "元组由志愿者维护。", "志愿者们") == 0.0


def test_jieba_words_option():
    assert text_tokens(ANSWER, cjk="jieba") == ["debian", "是", "一个", "自由", "的", "操作系统", "由", "志愿者", "维护"]
    assert text_tokens(REFERENCE, cjk="jieba") == ["debian", "是", "一个", "操作系统", "由", "志愿者", "维护"]
    # 9 and 7 words, all 7 reference words in the answer: P = 7/9, R = 1 -> F1 = 7/8; LCS is 7 too
    assert score("token_f1:jieba", ANSWER, REFERENCE) == pytest.approx(7 / 8)
    assert score("rouge_l:jieba", ANSWER, REFERENCE) == pytest.approx(7 / 8)
    assert score("token_precision:jieba", ANSWER, REFERENCE) == pytest.approx(7 / 9)
    assert get_metric("token_f1:jieba").name == "token_f1:jieba"
    # English scores the same either way
    for name in ("token_f1", "rouge_l", "exact_match", "answer_contains_reference"):
        assert score(f"{name}:jieba", "A quick fox jumps", "the quick brown fox") == score(
            name, "A quick fox jumps", "the quick brown fox")
    assert text_tokens("Guido van Rossum", cjk="jieba") == ["guido", "van", "rossum"]


def test_bad_tokenization_names_are_clear_errors():
    with pytest.raises(UnknownMetricError, match=r"'chars', 'jieba'"):
        get_metric("token_f1:words")
    with pytest.raises(UnknownMetricError, match="tokenize Chinese"):
        get_metric("mrr:jieba")
    with pytest.raises(UnknownMetricError, match="tokenize Chinese"):
        get_metric("ragas_exact_match:jieba")
    with pytest.raises(ValueError, match="cjk must be one of"):
        text_tokens("x", cjk="words")


def test_count_tokens_counts_cjk_characters():
    # Debian + 7 characters + 。 = 9 (it was 3: Debian, one run of characters, 。)
    assert count_tokens("Debian 是一个操作系统。") == 9
    assert count_tokens(ANSWER) == 1 + 16 + 2
    assert count_tokens("Hello, world") == 3 and count_tokens("don't stop") == 4  # English unchanged


# ----------------------------------------------------------------------------------------------- ragas
ZH_PAIRS = [(ANSWER, REFERENCE), (OTHER, REFERENCE), ("用 pip install 安装 the requests 包", "使用 pip 安装 requests"),
            (REFERENCE, REFERENCE), ("", REFERENCE)]


@pytest.mark.parametrize(("response", "reference"), ZH_PAIRS)
def test_ragas_rouge_tokenizes_chinese_as_the_native_metric(response, reference):
    # ragas stems English words (Porter), the native metric does not; these pairs have none it would change
    for mode in ("", ":jieba"):
        assert score(f"ragas_rouge_l{mode}", response, reference) == pytest.approx(
            score(f"rouge_l{mode}", response, reference), abs=1e-12)


def test_ragas_bleu_on_chinese():
    from sacrebleu import corpus_bleu

    # ragas' BleuScore with sacrebleu's zh tokenizer (one token per CJK character) for Chinese text
    want = corpus_bleu([ANSWER], [[REFERENCE]], tokenize="zh").score / 100
    assert score("ragas_bleu", ANSWER, REFERENCE) == pytest.approx(want)
    assert score("ragas_bleu", ANSWER, REFERENCE) > 0.7  # 13a sees two "words" and scores far lower
    assert score("ragas_bleu", REFERENCE, REFERENCE) == pytest.approx(1.0)
    assert score("ragas_bleu:jieba", REFERENCE, REFERENCE) == pytest.approx(1.0)
    words = "Debian 是 一个 自由 的 操作系统 ， 由 志愿者 维护 。"
    want = corpus_bleu([words], [["Debian 是 一个 操作系统 ， 由 志愿者 维护 。"]]).score / 100
    assert score("ragas_bleu:jieba", ANSWER, REFERENCE) == pytest.approx(want)
    # English: exactly ragas' own BleuScore (13a), curly quotes included
    assert score("ragas_bleu", "a “quoted” text", "a “quoted” text here") == pytest.approx(
        corpus_bleu(["a “quoted” text"], [["a “quoted” text here"]]).score / 100)
