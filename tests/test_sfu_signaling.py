"""The SFU's signaling plane end to end: a real `callpipe sfu` process and real clients.

Everything runs on 127.0.0.1.  The server is started with ``--port 0`` and prints the URL it
listens on, so no port is guessed.  A few cases that need tiny limits (join timeout, slow
consumer) run the same server class in-process.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sfuproc import SfuProcess
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from callpipe.errors import ClosedError, TransportError
from callpipe.net import (
    Disconnected,
    ParticipantJoined,
    ParticipantLeft,
    RelayReceived,
    ServerError,
    SignalingClient,
)
from callpipe.sfu import Limits, SignalingError, SignalingServer, issue_token
from callpipe.sfu.protocol import ErrorCode

SECRET = "signaling-test-secret-0123456789"
E = TypeVar("E")


def run(coro: Coroutine[Any, Any, E], timeout: float = 20.0) -> E:
    async def bounded() -> E:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


def identity() -> bytes:
    return os.urandom(32)


def token(room: str, name: str, **kw: Any) -> str:
    return issue_token(SECRET, room, name, **kw)


async def expect(client: SignalingClient, kind: type[E], timeout: float = 5.0) -> E:
    event = await client.next_event(timeout)
    assert isinstance(event, kind), f"expected {kind.__name__}, got {event!r}"
    return event


class Sfu(SfuProcess):
    """A `callpipe sfu` process on a free port, writing its final statistics to a file."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.stats_file = tmp / f"sfu-stats-{time.monotonic_ns()}.json"
        super().__init__("--stats-file", str(self.stats_file), *args, secret=SECRET)


@pytest.fixture(scope="module")
def sfu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sfu]:
    server = Sfu(tmp_path_factory.mktemp("sfu"), "--rate", "20", "--burst", "40",
                 "--max-message-bytes", "16384")  # fmt: skip
    yield server
    code, err = server.stop()
    assert code == 0 and "Traceback" not in err, err


def test_banner_names_the_media_endpoint(sfu: Sfu) -> None:
    assert re.search(r"media on udp://127\.0\.0\.1:\d+", sfu.banner), sfu.banner


def test_three_clients_join_see_each_other_relay_and_leave(sfu: Sfu) -> None:
    cli = subprocess.run(
        [sys.executable, "-m", "callpipe.cli.main", "token", "--room", "trio", "--name", "Carol"],
        capture_output=True, text=True, timeout=30, env={**os.environ, "CALLPIPE_SECRET": SECRET},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    carol_token = cli.stdout.strip()
    ids = [identity() for _ in range(3)]

    async def scenario() -> None:
        a = await SignalingClient.connect(sfu.url, token("trio", "Alice"), ids[0], "Alice")
        assert a.room == "trio" and a.members == {} and a.media is not None
        assert a.media.host == "127.0.0.1" and len(a.media.token) == 16
        assert a.you.name == "Alice" and a.you.identity == ids[0]
        assert a.limits["max_message_bytes"] == 16384

        b = await SignalingClient.connect(sfu.url, token("trio", "Bob"), ids[1])
        assert list(b.members) == [a.participant_id]
        assert b.members[a.participant_id].identity == ids[0]
        joined = await expect(a, ParticipantJoined)
        assert joined.member == b.you and joined.member.name == "Bob"

        c = await SignalingClient.connect(sfu.url, carol_token, ids[2], video_layers=2, rtx=True)
        assert list(c.members) == [a.participant_id, b.participant_id]
        for x in (a, b):
            assert (await expect(x, ParticipantJoined)).member == c.you
        assert len(c.you.ssrcs.video) == 2 and len(c.you.ssrcs.rtx) == 2
        all_ssrcs = [s for x in (a, b, c) for s in x.you.ssrcs.all()]
        assert len(set(all_ssrcs)) == len(all_ssrcs) == 2 + 2 + 5
        assert len({a.participant_id, b.participant_id, c.participant_id}) == 3

        # opaque binary payloads arrive byte for byte
        roster = bytes(range(256)) * 40 + os.urandom(1000)
        await a.send_relay(roster, kind="roster")
        for x in (b, c):
            got = await expect(x, RelayReceived)
            assert (got.sender, got.kind, got.direct) == (a.participant_id, "roster", False)
            assert got.payload == roster
        ack = b"\x00\xff key ack for carol only \x80"
        await b.send_relay(ack, to=c.participant_id, kind="key-ack")
        got = await expect(c, RelayReceived)
        assert (got.sender, got.payload, got.direct) == (b.participant_id, ack, True)
        hello = os.urandom(33)
        await c.send_relay(hello)
        for x in (a, b):  # a's next event is carol's: bob's direct message never reached it
            got = await expect(x, RelayReceived)
            assert (got.sender, got.payload, got.kind) == (c.participant_id, hello, None)

        # the server counted what it relayed
        stats = await a.stats()
        assert stats["relayed_messages"] == 3
        assert stats["relayed_bytes"] == len(roster) + len(ack) + len(hello)
        assert stats["deliveries"] == 2 + 1 + 2
        members = stats["members"]
        assert members[a.participant_id]["relay_bytes_sent"] == len(roster)
        assert members[c.participant_id]["relays_received"] == 2
        assert members[b.participant_id]["relays_received"] == 2
        assert await a.ping() > 0

        # goodbye, then a dropped connection
        await c.leave()
        for x in (a, b):
            left = await expect(x, ParticipantLeft)
            assert (left.participant_id, left.reason) == (c.participant_id, "left")
            assert left.member == c.you and c.participant_id not in x.members
        await b.close()
        left = await expect(a, ParticipantLeft)
        assert (left.participant_id, left.reason) == (b.participant_id, "disconnected")
        assert a.members == {}
        with pytest.raises(ClosedError):
            await b.send_relay(b"late")
        await a.leave()
        assert isinstance(await a.next_event(2), Disconnected)

    run(scenario())


def test_bad_tokens_are_refused_with_clear_errors(sfu: Sfu) -> None:
    now = time.time()
    good = token("vault", "Eve")
    prefix, claims, sig = good.split(".")
    changed = json.loads(base64.urlsafe_b64decode(claims + "=="))
    changed["room"] = "vault2"
    altered = base64.urlsafe_b64encode(json.dumps(changed).encode()).rstrip(b"=").decode()
    cases: list[tuple[str, str | None, str | None, str, str]] = [
        (token("vault", "Eve", ttl=60, now=now - 3600), None, None,
         ErrorCode.TOKEN_EXPIRED, "expired"),
        (token("other-room", "Eve"), "vault", None, ErrorCode.TOKEN_WRONG_ROOM, "'other-room'"),
        (issue_token("a different secret of 32 bytes!", "vault", "Eve"), None, None,
         ErrorCode.TOKEN_BAD_SIGNATURE, "does not verify"),
        (f"{prefix}.{altered}.{sig}", None, None, ErrorCode.TOKEN_BAD_SIGNATURE, "forged"),
        ("hello", "vault", None, ErrorCode.TOKEN_MALFORMED, "not a callpipe join token"),
        (good, None, "Mallory", ErrorCode.TOKEN_WRONG_NAME, "'Mallory'"),
    ]  # fmt: skip

    async def scenario() -> None:
        watcher = await SignalingClient.connect(sfu.url, token("vault", "Walt"), identity())
        for tok, room, name, code, words in cases:
            with pytest.raises(SignalingError) as info:
                await SignalingClient.connect(sfu.url, tok, identity(), name, room=room)
            assert info.value.code == code and words in str(info.value), str(info.value)
        # nobody got in, the room saw nothing, and a valid token still works
        ok = await SignalingClient.connect(sfu.url, good, identity(), "Eve")
        assert (await expect(watcher, ParticipantJoined)).member.id == ok.participant_id
        # the same identity key cannot be in the room twice
        with pytest.raises(SignalingError) as info:
            await SignalingClient.connect(sfu.url, token("vault", "Eve"), ok.you.identity)
        assert info.value.code == ErrorCode.DUPLICATE_IDENTITY
        await ok.leave()
        await expect(watcher, ParticipantLeft)
        await watcher.leave()

    run(scenario())


async def _raw_join(url: str, room: str, name: str) -> Any:
    ws = await ws_connect(url, proxy=None, max_size=2**20)
    await ws.send(json.dumps({"type": "join", "v": 1, "room": room, "token": token(room, name),
                              "identity": base64.b64encode(identity()).decode()}))  # fmt: skip
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome", welcome
    return ws, welcome["you"]["id"]


async def _raw_error(ws: Any) -> dict[str, Any]:
    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert msg["type"] == "error", msg
    return msg  # type: ignore[no-any-return]


def test_bad_messages_get_errors_and_hurt_nobody(sfu: Sfu) -> None:
    async def scenario() -> None:
        a = await SignalingClient.connect(sfu.url, token("bad", "A"), identity())
        b = await SignalingClient.connect(sfu.url, token("bad", "B"), identity())
        await expect(a, ParticipantJoined)

        # before a join nothing is tolerated: one fatal error, then close 1008
        for first, code in (("{not json", ErrorCode.MALFORMED),
                            ('{"type":"relay","v":1,"payload":""}', ErrorCode.NOT_JOINED),
                            ('{"type":"ping","v":9}', ErrorCode.UNSUPPORTED_VERSION)):  # fmt: skip
            async with ws_connect(sfu.url, proxy=None) as ws:
                await ws.send(first)
                err = await _raw_error(ws)
                assert (err["code"], err["fatal"]) == (code, True)
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

        # after a join: an error each, the connection stays usable
        ws, mallory = await _raw_join(sfu.url, "bad", "Mallory")
        for x in (a, b):
            await expect(x, ParticipantJoined)
        big = json.dumps({"type": "relay", "v": 1, "payload": "A" * 20000})
        bad: list[tuple[str | bytes, str, str | None, str]] = [
            ("{oops", ErrorCode.MALFORMED, None, "not JSON"),
            ('{"type":"dance","v":1}', ErrorCode.UNKNOWN_TYPE, None, "'dance'"),
            ('{"type":"relay","v":1,"payload":"%%"}', ErrorCode.MALFORMED, None, "base64"),
            (big, ErrorCode.TOO_LARGE, None, "over the limit of 16384 bytes"),
            (b'{"type":"ping","v":1}', ErrorCode.MALFORMED, None, "binary"),
            ('{"type":"relay","v":1,"payload":"","to":"p99"}', ErrorCode.UNKNOWN_PARTICIPANT,
             "relay", "'p99'"),
            (json.dumps({"type": "join", "v": 1, "room": "bad", "token": token("bad", "M"),
                         "identity": base64.b64encode(identity()).decode()}),
             ErrorCode.ALREADY_JOINED, "join", "already joined"),
        ]  # fmt: skip
        for data, code, ref, words in bad:
            await ws.send(data)
            err = await _raw_error(ws)
            assert (err["code"], err["fatal"], err.get("ref")) == (code, False, ref), err
            assert words in err["message"]
        await ws.send('{"type":"ping","v":1,"id":7}')
        assert json.loads(await ws.recv()) == {"type": "pong", "v": 1, "id": 7}
        payload = os.urandom(100)
        await ws.send(json.dumps({"type": "relay", "v": 1,
                                  "payload": base64.b64encode(payload).decode()}))  # fmt: skip
        for x in (a, b):  # nothing of the garbage reached the others; the good relay did
            got = await expect(x, RelayReceived)
            assert (got.sender, got.payload) == (mallory, payload)
        stats = await a.stats()
        assert stats["errors"] == {"malformed": 3, "unknown-type": 1, "too-large": 1,
                                   "unknown-participant": 1, "already-joined": 1}  # fmt: skip
        assert stats["members"][mallory]["errors"] == 7
        assert stats["members"][a.participant_id]["errors"] == 0

        # a message over the hard limit is not even read: the connection is closed (1009)
        await ws.send(json.dumps({"type": "relay", "v": 1, "payload": "A" * 300_000}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        for x in (a, b):
            left = await expect(x, ParticipantLeft)
            assert (left.participant_id, left.reason) == (mallory, "too-large")
        await a.send_relay(b"still here")
        assert (await expect(b, RelayReceived)).payload == b"still here"
        # the largest payload the welcome announces fits, with the longest `to` and `kind`
        largest = os.urandom(int(a.limits["max_payload_bytes"]))
        await a.send_relay(largest, to=b.participant_id, kind="k" * 32)
        assert (await expect(b, RelayReceived)).payload == largest
        with pytest.raises(SignalingError) as info:  # one byte more is refused before sending
            await a.send_relay(largest + b"!")
        assert info.value.code == ErrorCode.TOO_LARGE
        await a.leave()
        await b.leave()

    run(scenario())


def test_a_flooding_client_is_throttled_then_disconnected(sfu: Sfu) -> None:
    async def scenario() -> None:
        a = await SignalingClient.connect(sfu.url, token("flood", "A"), identity())
        b = await SignalingClient.connect(sfu.url, token("flood", "B"), identity())
        f = await SignalingClient.connect(sfu.url, token("flood", "Flooder"), identity())
        await expect(a, ParticipantJoined)
        await expect(a, ParticipantJoined)
        await expect(b, ParticipantJoined)
        sent = 0

        async def flood() -> None:
            nonlocal sent
            try:
                for _ in range(20_000):
                    await f.send_relay(b"x" * 200)
                    sent += 1
                    if sent % 10 == 0:
                        await asyncio.sleep(0)  # let everyone else run: a flood, not a freeze
            except ClosedError:
                pass

        async def next_from(x: SignalingClient, sender: str) -> RelayReceived | ParticipantLeft:
            while True:  # skip the flooder's messages that got through
                ev = await x.next_event(5)
                if isinstance(ev, RelayReceived) and ev.sender != sender:
                    continue
                assert isinstance(ev, (RelayReceived, ParticipantLeft)), ev
                return ev

        flooder = asyncio.create_task(flood())
        left_seen = {a.participant_id: False, b.participant_id: False}
        for i in range(30):  # a and b keep talking, in order, through the flood
            for src, dst in ((a, b), (b, a)):
                msg = f"{i} from {src.participant_id}".encode()
                await src.send_relay(msg)
                while True:
                    ev = await next_from(dst, src.participant_id)
                    if isinstance(ev, ParticipantLeft):
                        assert (ev.participant_id, ev.reason) == (f.participant_id, "rate-limited")
                        left_seen[dst.participant_id] = True
                        continue
                    assert ev.payload == msg
                    break
            await asyncio.sleep(0.01)
        await flooder
        assert sent < 20_000  # it was cut off
        # the flooder was told it is throttled, then disconnected
        events = []
        async for ev in f:
            events.append(ev)
        errors = [e for e in events if isinstance(e, ServerError)]
        assert errors[0].code == ErrorCode.RATE_LIMITED and not errors[0].fatal
        assert errors[-1].code == ErrorCode.RATE_LIMITED and errors[-1].fatal
        assert isinstance(events[-1], Disconnected) and events[-1].code == 1008
        for x in (a, b):
            if not left_seen[x.participant_id]:
                ev = await next_from(x, f.participant_id)
                assert isinstance(ev, ParticipantLeft) and ev.reason == "rate-limited"
        stats = await a.stats()
        assert stats["leaves"] == {"rate-limited": 1}
        assert stats["errors"]["rate-limited"] > 0
        assert stats["members"][a.participant_id]["rate_limited"] == 0
        await a.leave()
        await b.leave()

    run(scenario())


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "callpipe test sfu")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "sfu.crt", tmp / "sfu.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_wss_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = Sfu(tmp_path, "--cert", str(cert), "--key", str(key))
    try:
        assert server.url.startswith("wss://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(cert))

        async def scenario() -> None:
            url = server.url
            a = await SignalingClient.connect(url, token("tls", "A"), identity(), ssl=trusted)
            b = await SignalingClient.connect(url, token("tls", "B"), identity(), ssl=trusted)
            await expect(a, ParticipantJoined)
            secret_payload = os.urandom(4096)
            await b.send_relay(secret_payload, kind="roster")
            assert (await expect(a, RelayReceived)).payload == secret_payload
            # a client that does not trust the certificate, or speaks plain ws://, is not let in
            for untrusting in (ssl.create_default_context(), None):  # None: system trust
                with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
                    await SignalingClient.connect(server.url, token("tls", "C"), identity(),
                                                  ssl=untrusting)  # fmt: skip
            with pytest.raises(TransportError, match="cannot connect"):
                await SignalingClient.connect(server.url.replace("wss:", "ws:"),
                                              token("tls", "C"), identity(), timeout=3)  # fmt: skip
            await a.leave()
            assert (await expect(b, ParticipantLeft)).reason == "left"
            await b.leave()

        run(scenario())
    finally:
        code, err = server.stop()
    assert code == 0 and "Traceback" not in err, err


def test_sigterm_shuts_down_cleanly_and_writes_stats(tmp_path: Path) -> None:
    server = Sfu(tmp_path, "--room", "lobby", "--no-media")

    async def scenario() -> tuple[SignalingClient, SignalingClient]:
        a = await SignalingClient.connect(server.url, token("lobby", "A"), identity())
        b = await SignalingClient.connect(server.url, token("lobby", "B"), identity())
        await expect(a, ParticipantJoined)
        with pytest.raises(SignalingError) as info:  # a valid token for a room not served here
            await SignalingClient.connect(server.url, token("elsewhere", "C"), identity())
        assert info.value.code == ErrorCode.UNKNOWN_ROOM
        await a.send_relay(b"\x01\x02\x03")
        await expect(b, RelayReceived)
        server.terminate()
        for x in (a, b):
            err = await expect(x, ServerError, timeout=10)
            assert (err.code, err.fatal) == (ErrorCode.SHUTTING_DOWN, True)
            bye = await expect(x, Disconnected, timeout=10)
            assert bye.code == 1001
        return a, b

    a, b = run(scenario())
    code, err = server.stop()
    assert code == 0, err
    assert "Traceback" not in err and "stopped" in err
    assert "no media plane" in server.banner
    stats = json.loads(server.stats_file.read_text())
    assert stats["total_joins"] == 2 and stats["relayed_messages"] == 1
    assert stats["relayed_bytes"] == 3 and stats["refused_joins"] == {"unknown-room": 1}
    assert stats["connections_total"] == 3 and stats["connections_open"] == 0

    async def after() -> None:  # nobody listens any more: a clear transport error
        with pytest.raises(TransportError, match="cannot connect"):
            await SignalingClient.connect(server.url, token("lobby", "D"), identity(), timeout=3)
        with pytest.raises(ValueError, match="32 bytes"):
            await SignalingClient.connect(server.url, token("lobby", "D"), b"short")

    run(after())


# --- in-process: limits too small for the CLI defaults -------------------------------------


def test_join_timeout_and_slow_consumer() -> None:
    limits = Limits(join_timeout=0.3, send_queue_messages=4, rate_messages_per_s=1e6,
                    burst_messages=10**6, rate_bytes_per_s=1e12, burst_bytes=10**12)  # fmt: skip

    async def scenario() -> None:
        async with SignalingServer("127.0.0.1", 0, SECRET, limits=limits) as server:
            # a connection that never joins is told so and closed
            async with ws_connect(server.url, proxy=None) as ws:
                err = await _raw_error(ws)
                assert (err["code"], err["fatal"]) == (ErrorCode.JOIN_TIMEOUT, True)
            # a participant that stops reading is dropped; the sender is not held up
            s = await SignalingClient.connect(server.url, token("slow", "S"), identity())
            stalled, stalled_id = await _raw_join(server.url, "slow", "T")
            await expect(s, ParticipantJoined)
            left = asyncio.create_task(expect(s, ParticipantLeft, timeout=15))
            chunk = os.urandom(40_000)
            sent = 0
            while not left.done() and sent < 2000:
                await s.send_relay(chunk)
                sent += 1
                await asyncio.sleep(0)
            ev = await left
            assert (ev.participant_id, ev.reason) == (stalled_id, "slow-consumer")
            stats = server.stats()
            assert stats["by_room"]["slow"]["leaves"] == {"slow-consumer": 1}
            assert stats["errors"] == {"join-timeout": 1, "slow-consumer": 1}
            await s.send_relay(b"alone now")
            assert await s.ping() > 0
            stalled.transport.abort()  # the server already dropped it; do not wait for a close
            await s.leave()
        assert server.stats()["connections_open"] == 0

    run(scenario())


def test_echoed_relays_reach_everyone_in_one_order(sfu: Sfu) -> None:
    """Two participants broadcast at once with ``echo``: all three see the same order (the
    group's roster blocks rely on it), senders included; without echo the sender gets nothing."""
    ids = [identity() for _ in range(3)]

    async def scenario() -> None:
        xs = [
            await SignalingClient.connect(sfu.url, token("echo", n), k)
            for n, k in zip(("A", "B", "C"), ids, strict=True)
        ]
        for i, x in enumerate(xs):  # drain the joined events
            for _ in range(2 - i):
                await expect(x, ParticipantJoined)
        a, b, c = xs
        sends = [a.send_relay(f"a{i}".encode(), kind="blk", echo=True) for i in range(20)]
        sends += [b.send_relay(f"b{i}".encode(), kind="blk", echo=True) for i in range(20)]
        await asyncio.gather(*sends)
        orders = []
        for x in xs:
            got = [await expect(x, RelayReceived) for _ in range(40)]
            orders.append([g.payload for g in got])
        assert orders[0] == orders[1] == orders[2]
        assert sorted(orders[0]) == sorted([f"a{i}".encode() for i in range(20)]
                                           + [f"b{i}".encode() for i in range(20)])
        await c.send_relay(b"no echo", kind="blk")
        for x in (a, b):
            assert (await expect(x, RelayReceived)).payload == b"no echo"
        with pytest.raises(TimeoutError):
            await c.next_event(0.3)
        for x in xs:
            await x.leave()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_token_belongs_to_the_first_identity_that_uses_it(sfu: Sfu) -> None:
    """A leaked or shared token cannot admit a second identity; its owner may reconnect."""
    owner, thief = identity(), identity()
    tok = token("bound", "Owner")

    async def scenario() -> None:
        a = await SignalingClient.connect(sfu.url, tok, owner)
        with pytest.raises(SignalingError) as info:
            await SignalingClient.connect(sfu.url, tok, thief)
        assert info.value.code == ErrorCode.TOKEN_USED
        await a.leave()
        again = await SignalingClient.connect(sfu.url, tok, owner)  # a reconnect: allowed
        assert again.participant_id
        with pytest.raises(SignalingError) as info:
            await SignalingClient.connect(sfu.url, tok, thief)  # still not after a leave
        assert info.value.code == ErrorCode.TOKEN_USED
        await again.leave()

    asyncio.run(asyncio.wait_for(scenario(), 30))
