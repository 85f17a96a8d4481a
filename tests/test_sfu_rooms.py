"""Rooms, participants, SSRC assignment and rate limiting: sans-I/O, with injected time."""

from __future__ import annotations

import random

import pytest

from callpipe.sfu.protocol import ErrorCode
from callpipe.sfu.rooms import (
    ClientRateLimiter,
    Limits,
    RoomError,
    RoomRegistry,
    SsrcAllocator,
    TokenBucket,
    Verdict,
)


def ident(i: int) -> bytes:
    return i.to_bytes(32, "big")


# --- token bucket and rate limiter ----------------------------------------------------------


def test_token_bucket_bursts_then_refills_at_its_rate() -> None:
    b = TokenBucket(rate=8.0, burst=5, now=100.0)
    assert [b.consume(1, 100.0) for _ in range(6)] == [True] * 5 + [False]
    assert not b.consume(1, 100.0625)  # half a token
    assert b.consume(1, 100.125)  # one token after 1/8 s
    assert not b.consume(1, 100.125)
    assert b.tokens(200.0) == 5  # never above the burst
    assert not b.consume(6, 200.0) and b.tokens(200.0) == 5  # a refused cost takes nothing
    assert b.tokens(150.0) == 5  # time going backwards adds nothing


def test_rate_limiter_drops_then_disconnects_a_flood() -> None:
    limits = Limits(rate_messages_per_s=10, burst_messages=20, violation_burst=5,
                    violation_forgiveness_per_s=1.0)  # fmt: skip
    rl = ClientRateLimiter(limits, now=0.0)
    verdicts = [rl.check(100, now=0.0) for _ in range(30)]
    assert verdicts[:20] == [Verdict.ACCEPT] * 20
    assert verdicts[20:25] == [Verdict.DROP] * 5
    assert verdicts[25:] == [Verdict.DISCONNECT] * 5
    assert (rl.accepted, rl.dropped) == (20, 10)


def test_rate_limiter_lets_a_client_within_its_rate_run_forever() -> None:
    limits = Limits(rate_messages_per_s=10, burst_messages=20)
    rl = ClientRateLimiter(limits, now=0.0)
    t = 0.0
    for _ in range(10_000):  # 10 messages/s, exactly the rate, for 1000 s
        t += 0.1
        assert rl.check(1000, t) is Verdict.ACCEPT


def test_rate_limiter_forgives_violations_over_time() -> None:
    limits = Limits(rate_messages_per_s=1, burst_messages=1, violation_burst=3,
                    violation_forgiveness_per_s=1.0)  # fmt: skip
    rl = ClientRateLimiter(limits, now=0.0)
    assert rl.check(1, 0.0) is Verdict.ACCEPT
    assert [rl.check(1, 0.0) for _ in range(3)] == [Verdict.DROP] * 3
    # 10 s later the budget is back: a short burst is dropped again, not disconnected
    assert rl.check(1, 10.0) is Verdict.ACCEPT
    assert [rl.check(1, 10.0) for _ in range(3)] == [Verdict.DROP] * 3
    assert rl.check(1, 10.0) is Verdict.DISCONNECT


def test_rate_limiter_counts_bytes_too() -> None:
    limits = Limits(rate_bytes_per_s=1000, burst_bytes=65536, max_message_bytes=65536,
                    hard_max_message_bytes=65536)  # fmt: skip
    rl = ClientRateLimiter(limits, now=0.0)
    assert rl.check(65536, 0.0) is Verdict.ACCEPT
    assert rl.check(10, 0.0) is Verdict.DROP  # the byte bucket is empty, not the message one
    assert rl.check(1000, 1.0) is Verdict.ACCEPT


@pytest.mark.parametrize(
    "bad",
    [
        {"max_participants": 0},
        {"rate_messages_per_s": 0},
        {"max_message_bytes": 1000, "hard_max_message_bytes": 999},
        {"burst_bytes": 10},
        {"violation_forgiveness_per_s": -1},
    ],
)
def test_limits_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Limits"):
        Limits(**bad)  # type: ignore[arg-type]


# --- SSRCs -------------------------------------------------------------------------------------


def test_ssrcs_are_unique_and_nonzero_and_released() -> None:
    alloc = SsrcAllocator(random.Random(1))
    batches = [alloc.allocate(7) for _ in range(2000)]
    flat = [s for b in batches for s in b]
    assert len(set(flat)) == len(flat) == 14_000
    assert 0 not in flat and all(0 < s < 2**32 for s in flat)
    alloc.release(batches[0])
    assert len(alloc.in_use) == 14_000 - 7


class TinyRandom(random.Random):
    """A random source with only ``n`` values (and 0) to force collisions."""

    def __init__(self, n: int) -> None:
        super().__init__(7)
        self.n = n
        self.inner = random.Random(7)

    def getrandbits(self, k: int) -> int:
        return self.inner.randrange(self.n + 1)  # 0..n, 0 included on purpose


def test_ssrc_collisions_are_retried_and_exhaustion_is_an_error() -> None:
    alloc = SsrcAllocator(TinyRandom(10), max_attempts=2000)
    got = alloc.allocate(4) + alloc.allocate(6)
    assert sorted(got) == list(range(1, 11))  # every value once, never 0
    with pytest.raises(RoomError) as info:
        alloc.allocate(1)
    assert info.value.code == ErrorCode.INTERNAL
    assert len(alloc.in_use) == 10
    alloc.release([3])
    assert alloc.allocate(1) == [3]


def test_ssrcs_are_unique_across_rooms_and_layers() -> None:
    reg = RoomRegistry(Limits(max_participants=100), ssrcs=SsrcAllocator(TinyRandom(2000)))
    seen: list[int] = []
    for i in range(300):
        p = reg.join(f"room{i % 7}", name="n", user="u", identity=ident(i), now=0.0,
                     video_layers=1 + i % 4, rtx=i % 2 == 0)  # fmt: skip
        assert len(p.ssrcs.video) == 1 + i % 4
        assert len(p.ssrcs.rtx) == (len(p.ssrcs.video) if i % 2 == 0 else 0)
        seen += p.ssrcs.all()
    assert len(seen) == len(set(seen))
    assert reg.ssrcs.in_use == frozenset(seen)


# --- rooms -------------------------------------------------------------------------------------


def test_join_leave_ids_members_and_stats() -> None:
    reg = RoomRegistry(Limits(max_participants=3))
    a = reg.join("r", name="A", user="ua", identity=ident(1), now=10.0)
    b = reg.join("r", name="B", user="ub", identity=ident(2), now=11.0)
    c = reg.join("s", name="C", user="uc", identity=ident(3), now=12.0)
    assert (a.id, b.id, c.id) == ("p1", "p2", "p1")  # ids are per room
    assert len(a.media_token) == 16 and a.media_token != b.media_token
    room = reg.get("r")
    assert room is not None and [p.id for p in room.others("p1")] == ["p2"]
    assert a.info().identity == ident(1) and a.info().ssrcs == a.ssrcs

    assert [p.id for p in room.relay_targets("p1", None)] == ["p2"]
    assert [p.id for p in room.relay_targets("p1", "p2")] == ["p2"]
    for bad in ("p9", "p1"):  # nobody, or the sender itself
        with pytest.raises(RoomError) as info:
            room.relay_targets("p1", bad)
        assert info.value.code == ErrorCode.UNKNOWN_PARTICIPANT
    reg.record_relay(a, [b], 100)
    reg.record_error(ErrorCode.MALFORMED, b)
    st = reg.stats(now=20.0)
    assert st["rooms"] == 2 and st["participants"] == 3 and st["relayed_bytes"] == 100
    r = st["by_room"]["r"]
    assert r["relayed_messages"] == 1 and r["deliveries"] == 1 and r["errors"] == {"malformed": 1}
    assert r["members"]["p1"]["relays_sent"] == 1 and r["members"]["p2"]["relays_received"] == 1
    assert r["members"]["p2"]["errors"] == 1 and r["members"]["p1"]["joined_s_ago"] == 10.0

    # a new participant id is never reused while the room lives
    assert reg.leave("r", "p2", reason="disconnected") is b
    assert reg.leave("r", "p2") is None
    assert reg.join("r", name="D", user="ud", identity=ident(4), now=13.0).id == "p3"
    assert reg.stats(20.0)["by_room"]["r"]["leaves"] == {"disconnected": 1}
    # the last one out removes the room and its SSRCs
    reg.leave("r", "p1")
    reg.leave("r", "p3")
    assert reg.get("r") is None
    assert reg.ssrcs.in_use == frozenset(c.ssrcs.all())


def test_refusals_leave_the_registry_unchanged() -> None:
    reg = RoomRegistry(Limits(max_participants=2, max_rooms=2), allowed_rooms=["a", "b", "c"])
    reg.join("a", name="1", user="u", identity=ident(1), now=0)
    reg.join("a", name="2", user="u", identity=ident(2), now=0)
    reg.join("b", name="3", user="u", identity=ident(3), now=0)
    before = (reg.stats(0)["by_room"], reg.ssrcs.in_use)
    cases = [
        (("a", ident(9)), ErrorCode.ROOM_FULL),
        (("b", ident(3)), ErrorCode.DUPLICATE_IDENTITY),
        (("zzz", ident(9)), ErrorCode.UNKNOWN_ROOM),
        (("c", ident(9)), ErrorCode.TOO_MANY_ROOMS),
    ]
    for (room, identity), code in cases:
        with pytest.raises(RoomError) as info:
            reg.join(room, name="x", user="u", identity=identity, now=0)
        assert info.value.code == code
    assert (reg.stats(0)["by_room"], reg.ssrcs.in_use) == before
    assert reg.refused == {code: 1 for _, code in cases}
    # the same identity may be in two rooms
    reg.join("b", name="x", user="u", identity=ident(1), now=0)
