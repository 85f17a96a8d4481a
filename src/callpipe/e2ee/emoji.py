"""The fixed emoji table that turns a hash into something two people can compare aloud.

Both ends of a call (or every member of a group) derive the same hash from their keys and show
it as 4 emoji; a man in the middle makes the hashes, and so the emoji, differ.

The table
---------
:data:`EMOJI` holds exactly **256** emoji, each with a short English name for screen readers
(``Emoji("🐶", "dog", 0)``). The table was composed for callpipe (animals, plants and weather,
food, activities, objects, transport, a few characters); its order is part of the protocol and
must never change: insert nothing, remove nothing, reorder nothing. The rules it follows:

* every entry is a **single code point** with the Unicode property ``Emoji_Presentation=Yes``,
  so it renders as a colour emoji without a variation selector, with no skin-tone modifier,
  no ZWJ sequence and no flag (regional indicators);
* every code point was added in **Unicode 11.0 or earlier** (2018), so current Android, iOS,
  macOS, Windows and Linux fonts draw all of them;
* entries that look alike were left out (one tiger, one cow, one whale, one moon, one of each
  kind of ball; no smileys, whose yellow faces blur together; no hands, hearts, check marks or
  crosses that could be read as a verdict such as "verified" or "failed");
* names are unique, lower case, and what a screen reader user would say to the other side.

Why 256
-------
256 = 2^8 divides 2^64 (and 2^63), so reducing a uniformly random 64-bit chunk modulo the
table size is **exactly uniform**: every emoji has probability 1/256 and 4 emoji carry exactly
32 bits. Telegram's 333-entry table gives 333^4 ≈ 2^33.5 but a (negligible, below 2^-54)
modulo bias; with a committed key exchange or commit–reveal the attacker gets one guess either
way, so the extra 1.5 bits are not worth a biased, harder-to-audit mapping.

The mapping (:func:`emoji_for_hash`)
------------------------------------
The same algorithm as Telegram's calls (research/e2ee.md §2.2) with our table size::

    for i in 0 .. n-1:
        v = big_endian_uint64(h[8*i : 8*i+8]) & 0x7FFF_FFFF_FFFF_FFFF
        emoji[i] = EMOJI[v % 256]

Clearing the top bit keeps the algorithm identical to Telegram's; with 256 entries it does not
change the result, because 2^63 is a multiple of 256: emoji ``i`` is simply ``EMOJI[h[8*i+7]]``,
the last byte of chunk ``i``. There is **no bias**.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Emoji", "EMOJI", "TABLE_SIZE", "emoji_for_hash", "emoji_text", "emoji_names"]


@dataclass(frozen=True)
class Emoji:
    """One entry of the emoji table.

    :param char: the emoji itself (one code point).
    :param name: a short English name for screen readers, unique in the table.
    :param index: the position in :data:`EMOJI` (0 ... 255).
    """

    char: str
    name: str
    index: int

    def __str__(self) -> str:
        return self.char


# Order is part of the protocol: never reorder, insert or remove.
# fmt: off
_TABLE: tuple[tuple[str, str], ...] = (
    ("🐶", "dog"), ("🐱", "cat"), ("🐭", "mouse"), ("🐰", "rabbit"), ("🦊", "fox"), ("🐻", "bear"),
    ("🐼", "panda"), ("🐨", "koala"), ("🐯", "tiger"), ("🦁", "lion"), ("🐮", "cow"),
    ("🐷", "pig"), ("🐸", "frog"), ("🐵", "monkey"), ("🐔", "chicken"), ("🐧", "penguin"),
    ("🐦", "bird"), ("🦆", "duck"), ("🦅", "eagle"), ("🦉", "owl"), ("🦇", "bat"), ("🐺", "wolf"),
    ("🐴", "horse"), ("🦄", "unicorn"), ("🐝", "bee"), ("🐛", "caterpillar"), ("🦋", "butterfly"),
    ("🐌", "snail"), ("🐞", "ladybug"), ("🐜", "ant"), ("🦂", "scorpion"), ("🐢", "turtle"),
    ("🐍", "snake"), ("🦎", "lizard"), ("🦖", "t-rex"), ("🐙", "octopus"), ("🦐", "shrimp"),
    ("🦀", "crab"), ("🐟", "fish"), ("🐬", "dolphin"), ("🐳", "whale"), ("🦈", "shark"),
    ("🐊", "crocodile"), ("🦓", "zebra"), ("🦍", "gorilla"), ("🐘", "elephant"),
    ("🦏", "rhinoceros"), ("🐪", "camel"), ("🦒", "giraffe"), ("🦘", "kangaroo"), ("🐑", "sheep"),
    ("🐐", "goat"), ("🦌", "deer"), ("🦚", "peacock"), ("🦜", "parrot"), ("🦢", "swan"),
    ("🦝", "raccoon"), ("🦔", "hedgehog"), ("🐉", "dragon"), ("🦛", "hippo"), ("🌲", "evergreen"),
    ("🌴", "palm tree"), ("🌵", "cactus"), ("🌷", "tulip"), ("🌹", "rose"), ("🌻", "sunflower"),
    ("🌸", "cherry blossom"), ("🍀", "clover"), ("🍁", "maple leaf"), ("🍄", "mushroom"),
    ("🌱", "seedling"), ("🌍", "globe"), ("🌙", "crescent moon"), ("🌞", "sun"), ("⭐", "star"),
    ("🌈", "rainbow"), ("⚡", "lightning"), ("⛄", "snowman"), ("🔥", "fire"), ("💧", "droplet"),
    ("🌊", "wave"), ("🌋", "volcano"), ("☔", "umbrella"), ("🗻", "mountain"), ("🍎", "apple"),
    ("🍊", "orange"), ("🍋", "lemon"), ("🍌", "banana"), ("🍉", "watermelon"), ("🍇", "grapes"),
    ("🍓", "strawberry"), ("🍍", "pineapple"), ("🍆", "eggplant"), ("🥑", "avocado"),
    ("🥦", "broccoli"), ("🌽", "corn"), ("🥕", "carrot"), ("🍞", "bread"), ("🥨", "pretzel"),
    ("🧀", "cheese"), ("🥚", "egg"), ("🍗", "drumstick"), ("🌭", "hot dog"), ("🍔", "burger"),
    ("🍟", "fries"), ("🍕", "pizza"), ("🌮", "taco"), ("🍿", "popcorn"), ("🍣", "sushi"),
    ("🍦", "ice cream"), ("🍩", "doughnut"), ("🍪", "cookie"), ("🎂", "cake"), ("🍭", "lollipop"),
    ("🍯", "honey"), ("☕", "coffee"), ("🍷", "wine"), ("🍺", "beer"), ("⚽", "soccer ball"),
    ("🏀", "basketball"), ("🏈", "american football"), ("🎾", "tennis"), ("🥊", "boxing glove"),
    ("⛳", "golf"), ("🎣", "fishing rod"), ("🎿", "skis"), ("🎯", "target"),
    ("🎮", "game controller"), ("🎲", "dice"), ("🧩", "puzzle"), ("🧸", "teddy bear"),
    ("🎭", "masks"), ("🎨", "palette"), ("🧶", "yarn"), ("🎈", "balloon"), ("🎉", "party popper"),
    ("🎁", "gift"), ("🎀", "ribbon"), ("🎃", "pumpkin"), ("🎆", "fireworks"), ("🏆", "trophy"),
    ("🏅", "medal"), ("🎫", "ticket"), ("🎬", "clapper board"), ("🎤", "microphone"),
    ("🎧", "headphones"), ("🎷", "saxophone"), ("🎸", "guitar"), ("🎹", "piano"),
    ("🎺", "trumpet"), ("🎻", "violin"), ("🥁", "drum"), ("🔔", "bell"), ("📣", "megaphone"),
    ("🎵", "music note"), ("🛹", "skateboard"), ("🎡", "ferris wheel"), ("🎢", "roller coaster"),
    ("📱", "phone"), ("💻", "laptop"), ("⌚", "watch"), ("⏰", "alarm clock"), ("⌛", "hourglass"),
    ("📷", "camera"), ("📺", "television"), ("📻", "radio"), ("💡", "light bulb"),
    ("🔦", "flashlight"), ("📕", "book"), ("📰", "newspaper"), ("💰", "money bag"), ("💎", "gem"),
    ("🔑", "key"), ("🔒", "lock"), ("🔨", "hammer"), ("🔧", "wrench"), ("🧲", "magnet"),
    ("🔬", "microscope"), ("🔭", "telescope"), ("📡", "satellite dish"), ("💊", "pill"),
    ("🚪", "door"), ("🛁", "bathtub"), ("🧹", "broom"), ("🛒", "shopping cart"),
    ("🎒", "backpack"), ("👓", "glasses"), ("👔", "tie"), ("👕", "t-shirt"), ("🧦", "socks"),
    ("👗", "dress"), ("👟", "sneaker"), ("👢", "boot"), ("👑", "crown"), ("🎩", "top hat"),
    ("💍", "ring"), ("📎", "paperclip"), ("📏", "ruler"), ("📦", "parcel"), ("📫", "mailbox"),
    ("📅", "calendar"), ("🔍", "magnifying glass"), ("🔋", "battery"), ("💾", "floppy disk"),
    ("🧯", "fire extinguisher"), ("🧭", "compass"), ("🧱", "brick"), ("⚓", "anchor"),
    ("🔮", "crystal ball"), ("🎰", "slot machine"), ("🏮", "lantern"), ("🧮", "abacus"),
    ("🧬", "dna"), ("🧳", "suitcase"), ("🧰", "toolbox"), ("🗿", "moai"), ("🏺", "amphora"),
    ("🚗", "car"), ("🚕", "taxi"), ("🚌", "bus"), ("🚑", "ambulance"), ("🚒", "fire engine"),
    ("🚓", "police car"), ("🚜", "tractor"), ("🚲", "bicycle"), ("🛴", "scooter"),
    ("🚂", "locomotive"), ("🚁", "helicopter"), ("🛫", "airplane"), ("🚀", "rocket"),
    ("🛸", "ufo"), ("🛶", "canoe"), ("⛵", "sailboat"), ("🚢", "ship"), ("🚦", "traffic light"),
    ("🚧", "construction"), ("⛽", "fuel pump"), ("🏠", "house"), ("🏰", "castle"),
    ("🗼", "tower"), ("⛺", "tent"), ("🏭", "factory"), ("⛲", "fountain"),
    ("🗽", "statue of liberty"), ("🌉", "bridge"), ("🚚", "truck"), ("🤖", "robot"),
    ("👻", "ghost"), ("💀", "skull"), ("👽", "alien"), ("🤡", "clown"), ("🧠", "brain"),
    ("🦴", "bone"), ("🦷", "tooth"), ("👀", "eyes"), ("👂", "ear"),
)
# fmt: on

#: the table, in protocol order (``EMOJI[i].index == i``)
EMOJI: tuple[Emoji, ...] = tuple(Emoji(c, n, i) for i, (c, n) in enumerate(_TABLE))
#: number of entries in :data:`EMOJI`
TABLE_SIZE = len(EMOJI)

_MASK63 = 0x7FFF_FFFF_FFFF_FFFF


def emoji_for_hash(h: bytes | bytearray | memoryview, n: int = 4) -> list[Emoji]:
    """Map a hash to ``n`` emoji (see the module docstring for the exact algorithm).

    :param h: the hash; at least ``8 * n`` bytes (only those are used).
    :param n: how many emoji, 1 or more (each consumes an 8-byte chunk of ``h``).
    :returns: ``n`` entries of :data:`EMOJI`.
    :raises TypeError: ``h`` is not bytes-like.
    :raises ValueError: ``n`` < 1 or ``h`` shorter than ``8 * n`` bytes.
    """
    if not isinstance(h, (bytes, bytearray, memoryview)):
        raise TypeError(f"hash must be bytes, not {type(h).__name__}")
    data = bytes(h)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if len(data) < 8 * n:
        raise ValueError(f"{n} emoji need a hash of at least {8 * n} bytes, got {len(data)}")
    out = []
    for i in range(n):
        v = int.from_bytes(data[8 * i : 8 * i + 8], "big") & _MASK63
        out.append(EMOJI[v % TABLE_SIZE])
    return out


def emoji_text(emoji: list[Emoji]) -> str:
    """The emoji as one display string, separated by spaces (e.g. ``"🐶 🍕 🚲 🎸"``)."""
    return " ".join(e.char for e in emoji)


def emoji_names(emoji: list[Emoji]) -> str:
    """The names for screen readers, comma-separated (e.g. ``"dog, pizza, bicycle, guitar"``)."""
    return ", ".join(e.name for e in emoji)
