"""The emoji table and the hash -> emoji mapping: table hygiene, rendering rules, known answers."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callpipe.e2ee.emoji import EMOJI, TABLE_SIZE, Emoji, emoji_for_hash, emoji_names, emoji_text


def _table_digest() -> str:
    text = "".join(f"{e.index} {e.char} {e.name}\n" for e in EMOJI)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---- the table ---------------------------------------------------------------------------------


def test_table_has_256_distinct_entries_with_unique_names() -> None:
    assert TABLE_SIZE == len(EMOJI) == 256
    assert len({e.char for e in EMOJI}) == 256
    assert len({e.name for e in EMOJI}) == 256
    assert [e.index for e in EMOJI] == list(range(256))
    assert all(isinstance(e, Emoji) for e in EMOJI)


def test_names_are_short_lowercase_english() -> None:
    for e in EMOJI:
        assert e.name == e.name.strip().lower(), e
        assert 2 <= len(e.name) <= 20, e
        assert all(c.isascii() and (c.isalpha() or c in " -") for c in e.name), e


def test_every_entry_is_one_symbol_code_point_without_modifiers_or_flags() -> None:
    for e in EMOJI:
        assert len(e.char) == 1, f"{e.name}: {len(e.char)} code points"
        cp = ord(e.char)
        assert unicodedata.category(e.char) == "So", e
        assert unicodedata.name(e.char, ""), e  # assigned in Python's Unicode (14.0)
        assert not 0x1F1E6 <= cp <= 0x1F1FF, f"{e.name}: regional indicator (flag part)"
        assert not 0x1F3FB <= cp <= 0x1F3FF, f"{e.name}: skin-tone modifier"
        assert cp not in (0x200D, 0xFE0F, 0xFE0E), e


def test_table_is_frozen() -> None:
    # SHA-256 over "index char name\n" of every entry, computed once from the table as written.
    # Any reorder, insertion, removal or rename changes every user's emoji: it must fail here.
    assert _table_digest() == "35e98ae3563fc1c2b4e61b3887fa848a34d775fc14174d5e77e4c1af392ad236"


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl not installed")
def test_unicode_properties_checked_by_perl() -> None:
    """An independent check with perl's Unicode database (Unicode::UCD, perl 5.36 = Unicode 14):
    each entry is one extended grapheme cluster (``\\X``), has Emoji_Presentation=Yes (renders
    as emoji without a variation selector) and was added in Unicode 11.0 or earlier."""
    script = r"""
        use Unicode::UCD qw(charprop);
        while (my $line = <STDIN>) {
            chomp $line;
            my $one = ($line =~ /\A\X\z/) ? 1 : 0;
            my $cp = ord($line);
            print join(" ", $one, charprop($cp, "Emoji_Presentation"), charprop($cp, "Age")), "\n";
        }
    """
    proc = subprocess.run(
        ["perl", "-CS", "-e", script],
        input="".join(e.char + "\n" for e in EMOJI),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0 and "Unicode/UCD.pm" in proc.stderr:
        pytest.skip("perl's Unicode::UCD is not installed")
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()
    assert len(rows) == 256
    for e, row in zip(EMOJI, rows, strict=True):
        one, presentation, age = row.split()
        assert one == "1", f"{e.name}: not a single grapheme"
        assert presentation == "Yes", f"{e.name}: Emoji_Presentation={presentation}"
        major = int(age.removeprefix("V").split("_")[0])
        assert major <= 11, f"{e.name}: added in Unicode {age}"


# ---- the mapping -------------------------------------------------------------------------------


def _reference(h: bytes, n: int) -> list[int]:
    """Independent re-implementation: with 256 entries, v mod 256 of the masked big-endian
    uint64 is just the chunk's last byte."""
    return [h[8 * i + 7] for i in range(n)]


def test_known_answer_counting_bytes() -> None:
    # by hand: chunk i of bytes(range(32)) ends with byte 8*i+7 -> indices 7, 15, 23, 31
    got = emoji_for_hash(bytes(range(32)))
    assert [e.index for e in got] == [7, 15, 23, 31]
    assert [e.name for e in got] == ["koala", "penguin", "unicorn", "turtle"]
    assert emoji_text(got) == "🐨 🐧 🦄 🐢"
    assert emoji_names(got) == "koala, penguin, unicorn, turtle"


def test_known_answer_sha256_abc() -> None:
    # SHA-256("abc") = ba7816bf8f01cfea 414140de5dae2223 b00361a396177a9c b410ff61f20015ad
    # (FIPS 180-2 example); chunks end in 0xea, 0x23, 0x9c, 0xad = 234, 35, 156, 173
    h = hashlib.sha256(b"abc").digest()
    assert h.hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    got = emoji_for_hash(h)
    assert [e.index for e in got] == [234, 35, 156, 173]
    assert [(e.char, e.name) for e in got] == [
        ("🚦", "traffic light"),
        ("🐙", "octopus"),
        ("🎡", "ferris wheel"),
        ("🔒", "lock"),
    ]


def test_top_bit_mask_does_not_change_the_result() -> None:
    # 0xff..ff masked to 0x7f..ff: 2^63 - 1 mod 256 = 255 -> the last entry
    assert emoji_for_hash(b"\xff" * 8, 1) == [EMOJI[255]]
    assert emoji_for_hash(b"\x80" + bytes(6) + b"\x05", 1) == [EMOJI[5]]


def test_mapping_is_exactly_uniform() -> None:
    # every one of the 256 last-byte values selects a different entry, whatever the 7 other bytes
    for prefix in (bytes(7), b"\xff" * 7, b"\x80\x01\x02\x03\x04\x05\x06"):
        hits = [emoji_for_hash(prefix + bytes([b]), 1)[0].index for b in range(256)]
        assert sorted(hits) == list(range(256))


@given(st.binary(min_size=32, max_size=64), st.integers(min_value=1, max_value=4))
def test_matches_reference_implementation(h: bytes, n: int) -> None:
    assert [e.index for e in emoji_for_hash(h, n)] == _reference(h, n)


def test_more_emoji_from_longer_hashes() -> None:
    h = hashlib.sha512(b"x").digest()
    assert [e.index for e in emoji_for_hash(h, 8)] == _reference(h, 8)
    assert emoji_for_hash(bytearray(h), 2) == emoji_for_hash(memoryview(h), 2)


@pytest.mark.parametrize(
    "h,n,exc",
    [
        (bytes(31), 4, ValueError),
        (b"", 1, ValueError),
        (bytes(32), 0, ValueError),
        (bytes(32), -1, ValueError),
        (bytes(32), True, ValueError),
        ("not bytes", 1, TypeError),
        (None, 1, TypeError),
    ],
)
def test_bad_input(h: object, n: int, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        emoji_for_hash(h, n)  # type: ignore[arg-type]
