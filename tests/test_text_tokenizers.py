import numpy as np
import pytest

from uniaudio import manifest
from uniaudio.pipeline.recipes import records
from uniaudio.tokenize.phonemes import WORD, PhonemeTokenizer, phonemize
from uniaudio.tokenize.text import BPETokenizer, manifest_texts
from uniaudio.tokenize.vocab import Vocabulary

TEXTS = ["The quiet forest waited until dawn.", "naïve café, 東京 — résumé!", "Numbers like 1,234.5 and e-mail."]


@pytest.fixture(scope="module")
def demo_texts(demo_root, tmp_path_factory):
    m = tmp_path_factory.mktemp("m") / "all.parquet"
    rows = list(records("librispeech", demo_root / "LibriSpeech")) + list(records("audiocaps", demo_root / "audiocaps"))
    manifest.write_manifest(m, rows)
    return m, list(manifest_texts([m]))


def test_bpe_trains_on_manifest_text_and_round_trips(tmp_path, demo_texts):
    _, texts = demo_texts
    assert any(t.isupper() for t in texts) and any(t[0].isupper() and not t.isupper() for t in texts)  # text + captions
    bpe = BPETokenizer.train(texts, vocab_size=400, min_frequency=2)
    for t in texts[:20] + TEXTS:  # byte-level: unseen characters round-trip too
        assert bpe.decode(bpe.encode(t)) == t
    assert len(bpe.encode(texts[0])) < len(texts[0])  # it learned merges
    loaded = BPETokenizer.load(bpe.save(tmp_path / "tokenizer.json"))
    assert loaded.encode(TEXTS[1]) == bpe.encode(TEXTS[1]) and loaded.vocab_size == bpe.vocab_size
    with pytest.raises(ValueError, match="out of range"):
        bpe.decode([bpe.vocab_size])
    with pytest.raises(FileNotFoundError):
        BPETokenizer.load(tmp_path / "none.json")


def test_phonemes_round_trip(tmp_path, demo_texts):
    _, texts = demo_texts
    assert phonemize(["hello world"]) == [["h", "ə", "l", "oʊ", WORD, "w", "ɜː", "l", "d"]]
    tok = PhonemeTokenizer.fit(texts[:30])
    for t in texts[:10]:
        phones = tok.phones(t)
        # espeak-ng may join function words ("on the"), so boundaries are at most words - 1
        assert tok.decode(tok.encode(t)) == phones and 0 < phones.count(WORD) <= len(t.split()) - 1
    again = PhonemeTokenizer.load(tok.save(tmp_path / "phones.json"))
    assert again.inventory == tok.inventory
    assert tok.encode_phones(["ʘ"]) == [0]  # a click not in the inventory maps to <unk>


def test_vocabulary_maps_every_token_once_and_sequences_round_trip():
    v = Vocabulary()
    v.add("bpe", 500)
    v.add("phoneme", 60)
    codec = v.add("codec", 1024, codebooks=3)
    assert v.size == codec.end == len(v.specials) + 500 + 60 + 3 * 1024
    owners = [v.owner(i) for i in range(v.size)]
    assert owners.count("special") == len(v.specials) and owners.count("codec") == 3072
    assert len({(r.offset, r.end) for r in v.ranges.values()}) == 3
    for tok in v.specials:
        assert v.specials[v.id(tok)] == tok
    with pytest.raises(ValueError, match="outside"):
        v.owner(v.size)

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 1024, (3, 25))
    words = rng.integers(0, 500, 12)
    ids, mask = v.sequence("tts", [("text", "bpe", words), ("audio", "codec", codes)], target=1)
    assert ids[0] == v.id("<start>") and ids[1] == v.id("<task:tts>") and ids[-1] == v.id("<end>")
    assert mask.sum() == 75 + 2  # target codes + <audio_end> + <end>
    assert not mask[: 2 + 1 + 12 + 1].any()  # no loss on the condition
    task, segs = v.parse(ids)
    assert task == "tts" and segs[0][1] == "bpe" and segs[1][1] == "codec"
    np.testing.assert_array_equal(segs[0][2], words)
    np.testing.assert_array_equal(segs[1][2], codes)
    # frame-major flattening: frame 0 codebooks 0,1,2 first
    body = ids[2 + 1 + 12 + 1 + 1:][:3] - codec.offset
    assert list(body) == [codes[0, 0], 1024 + codes[1, 0], 2048 + codes[2, 0]]

    with pytest.raises(ValueError, match="out of range"):
        v.encode_tokens("codec", np.full((3, 2), 1024))
    with pytest.raises(ValueError, match=r"\[3, frames\]"):
        v.encode_tokens("codec", np.zeros((2, 4), int))


def test_vocabulary_save_load(tmp_path):
    v = Vocabulary()
    v.add("bpe", 100)
    v.add("codec", 16, codebooks=2)
    w = Vocabulary.load(v.save(tmp_path / "vocab.json"))
    assert w.specials == v.specials and w.ranges == v.ranges and w.size == v.size
    ids, _ = v.sequence("asr", [("audio", "codec", np.ones((2, 3), int)), ("text", "bpe", [5, 6])], target=1)
    assert w.parse(ids)[0] == "asr"


def test_text_front_ends_per_language():
    """zh-chars reads numbers out as characters (cn2an), full-width forms to half-width, drops
    AISHELL's word spaces; zh-pinyin gives tone-numbered syllables; a language with no front
    end configured has none (the sentence stage then rejects its rows)."""
    from uniaudio.tokenize.frontends import DEFAULT, for_language, zh_chars, zh_pinyin

    assert zh_chars("他 买了3本书，花了２５元") == "他买了三本书,花了二十五元"
    assert zh_chars("二零二四年") == "二零二四年"
    assert zh_pinyin("你好世界") == "ni3 hao3 shi4 jie4"
    assert for_language(DEFAULT, "zh-CN") is zh_chars and for_language(DEFAULT, None)("a  b") == "a b"
    assert for_language(DEFAULT, "fr") is None and for_language(DEFAULT, None, default_language="fr") is None
    from uniaudio.tokenize.frontends import script_mismatch

    assert script_mismatch("hello world", "zh") and script_mismatch("你好 world", "en")
    assert not script_mismatch("你好 ABC", "zh") and not script_mismatch("hello", "en-US")
    assert script_mismatch("12 34", "en") and not script_mismatch("bonjour", "fr")


def test_espeak_phoneme_front_ends(monkeypatch):
    """`espeak-VOICE`: espeak-ng's phonemes in the voice's language: Mandarin through its pinyin
    voice (numbers read as characters first, tones as digits), English through en-us; a voice
    espeak-ng lacks is refused when the config loads, naming the field; a voice that switches
    language inside the text (Debian's 1.51 `cmn` reads its pinyin as English) is an error that
    names the voice to use, never English phones for a Mandarin row."""
    from uniaudio.config import ConfigError, from_dict
    from uniaudio.pipeline.sentences.config import SentenceConfig
    from uniaudio.tokenize import frontends, phonemes

    zh = frontends.get("espeak-cmn-latn-pinyin")
    got = zh("他买了3本书").split(" ")
    assert "|" in got and any(p[-1] in "12345" for p in got) and zh("三本") == zh("3本")  # tones: digits
    assert frontends.get("espeak-en-us")("hello world") == "h ə l oʊ | w ɜː l d"
    with pytest.raises(frontends.FrontEndError, match="no voice 'xx-nowhere'"):
        frontends.get("espeak-xx-nowhere")
    with pytest.raises(ConfigError, match="text_frontends.zh.*no voice"):
        from_dict(SentenceConfig, {"tokens": "x", "output": "y", "text_frontends": {"zh": "espeak-xx-nowhere"}})
    monkeypatch.setattr(phonemes, "phonemize", lambda texts, voice: [["(en)", "m", "ɪ", "ŋ", "(cmn)"]])
    with pytest.raises(frontends.FrontEndError, match="another language.*espeak-cmn-latn-pinyin"):
        frontends.get("espeak-cmn")("小明")
