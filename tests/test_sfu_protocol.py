"""The signaling message schema: round trips, strict validation with clear errors, no crashes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callpipe.sfu.protocol import (
    PROTOCOL_VERSION,
    ErrorCode,
    ErrorMessage,
    Join,
    Joined,
    Leave,
    Left,
    MediaInfo,
    MemberInfo,
    Ping,
    Pong,
    ProtocolError,
    Relay,
    RelayDelivery,
    Ssrcs,
    StatsReply,
    StatsRequest,
    Welcome,
    encode,
    parse_client_message,
    parse_server_message,
)

IDENTITY = bytes(range(32))
MEMBER = MemberInfo("p1", "Alice Ä", "user-1", IDENTITY, Ssrcs(1, (2, 3), (4, 5)))

CLIENT_MESSAGES = [
    Join("room-1", "cpt1.a.b", IDENTITY),
    Join("room.2_x", "cpt1.a.b", IDENTITY, name="Bob", video_layers=3, rtx=True),
    Relay(bytes(range(256))),
    Relay(b"", to="p7", kind="key-ack"),
    Leave(),
    Ping(),
    Ping(2**53),
    StatsRequest(5),
]
SERVER_MESSAGES = [
    Welcome("r", MEMBER, (), None, {}),
    Welcome(
        "r",
        MEMBER,
        (MEMBER, MemberInfo("p2", "b", "u", IDENTITY, Ssrcs(9, (8,)))),
        MediaInfo("127.0.0.1", 5004, bytes(16)),
        {"max_message_bytes": 65536, "rate_messages_per_s": 2.5},
    ),
    Joined(MEMBER),
    Left("p1", "rate-limited"),
    RelayDelivery("p1", b"\x00\xff" * 100, to="p2", kind="roster"),
    RelayDelivery("p3", b"x"),
    ErrorMessage(ErrorCode.TOO_LARGE, "message too large", fatal=False, ref="relay"),
    ErrorMessage(ErrorCode.SHUTTING_DOWN, "", fatal=True),
    Pong(1),
    StatsReply({"room": "r", "members": {"p1": {"messages_in": 3}}}, 4),
]


@pytest.mark.parametrize("msg", CLIENT_MESSAGES, ids=lambda m: type(m).__name__)
def test_client_messages_round_trip(msg: Any) -> None:
    text = encode(msg)
    assert json.loads(text)["v"] == PROTOCOL_VERSION
    assert parse_client_message(text) == msg
    assert parse_client_message(text.encode()) == msg


@pytest.mark.parametrize("msg", SERVER_MESSAGES, ids=lambda m: type(m).__name__)
def test_server_messages_round_trip(msg: Any) -> None:
    assert parse_server_message(encode(msg)) == msg


def _join(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "type": "join",
        "v": 1,
        "room": "r",
        "token": "t",
        "identity": base64.b64encode(IDENTITY).decode(),
    }
    d.update(over)
    return {k: v for k, v in d.items() if v is not None}


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        ("{", ErrorCode.MALFORMED, "not JSON"),
        (b"\xff\xfe", ErrorCode.MALFORMED, "not UTF-8"),
        ("[1, 2]", ErrorCode.MALFORMED, "must be a JSON object, not an array"),
        ('"join"', ErrorCode.MALFORMED, "not a string"),
        ('{"v": 1}', ErrorCode.MALFORMED, "no string field 'type'"),
        ('{"type": 7, "v": 1}', ErrorCode.MALFORMED, "'type'"),
        ('{"type": "hello", "v": 1}', ErrorCode.UNKNOWN_TYPE, "unknown message type 'hello'"),
        ('{"type": "welcome", "v": 1}', ErrorCode.UNKNOWN_TYPE, "expected one of"),
        ('{"type": "ping"}', ErrorCode.MALFORMED, "missing field 'v'"),
        ('{"type": "ping", "v": 2}', ErrorCode.UNSUPPORTED_VERSION, "version 2"),
        ('{"type": "ping", "v": true}', ErrorCode.UNSUPPORTED_VERSION, "version True"),
        ('{"type": "ping", "v": 1, "x": 0}', ErrorCode.MALFORMED, "unknown field(s) 'x'"),
        ('{"type": "ping", "v": 1, "id": -1}', ErrorCode.MALFORMED, "field 'id'"),
        ('{"type": "ping", "v": 1, "id": 1.5}', ErrorCode.MALFORMED, "field 'id'"),
        ('{"type": "ping", "v": 1, "id": NaN}', ErrorCode.MALFORMED, "NaN"),
        ('{"type": "ping", "v": 1, "v": 1}', ErrorCode.MALFORMED, "duplicate key 'v'"),
        ("[" * 100_000 + "]" * 100_000, ErrorCode.MALFORMED, "not JSON"),
        ('{"type": "ping", "v": 1, "id": ' + "9" * 5000 + "}", ErrorCode.MALFORMED, "JSON"),
        (json.dumps(_join(room="")), ErrorCode.MALFORMED, "join: field 'room'"),
        (json.dumps(_join(room="a/b")), ErrorCode.MALFORMED, "field 'room'"),
        (json.dumps(_join(room="-x")), ErrorCode.MALFORMED, "field 'room'"),
        (json.dumps(_join(token=None)), ErrorCode.MALFORMED, "join: missing field 'token'"),
        (json.dumps(_join(identity="AAAA")), ErrorCode.MALFORMED, "must decode to 32 bytes"),
        (json.dumps(_join(identity="*" * 44)), ErrorCode.MALFORMED, "not valid base64"),
        (json.dumps(_join(identity=32)), ErrorCode.MALFORMED, "base64 string, not a number"),
        (json.dumps(_join(name="a\nb")), ErrorCode.MALFORMED, "control characters"),
        (json.dumps(_join(name="")), ErrorCode.MALFORMED, "field 'name'"),
        (json.dumps(_join(video_layers=5)), ErrorCode.MALFORMED, "'video_layers'"),
        (json.dumps(_join(video_layers=True)), ErrorCode.MALFORMED, "'video_layers'"),
        (json.dumps(_join(rtx=1)), ErrorCode.MALFORMED, "'rtx' must be true or false"),
        ('{"type": "relay", "v": 1}', ErrorCode.MALFORMED, "relay: missing field 'payload'"),
        ('{"type": "relay", "v": 1, "payload": "QQ"}', ErrorCode.MALFORMED, "base64"),
        ('{"type": "relay", "v": 1, "payload": "", "to": ""}', ErrorCode.MALFORMED, "'to'"),
        ('{"type": "relay", "v": 1, "payload": "", "kind": "a b"}', ErrorCode.MALFORMED, "'kind'"),
    ],
)
def test_invalid_client_messages_name_the_problem(data: str | bytes, code: str, words: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(data)
    assert info.value.code == code
    assert words in str(info.value)


def test_payload_size_limit_is_checked_before_decoding() -> None:
    text = encode(Relay(b"x" * 1000))
    assert parse_client_message(text, max_payload=1000).payload == b"x" * 1000  # type: ignore[union-attr]
    with pytest.raises(ProtocolError, match="longer than 999 bytes"):
        parse_client_message(text, max_payload=999)


def test_invalid_server_messages() -> None:
    welcome = json.loads(encode(SERVER_MESSAGES[1]))
    welcome["members"][1]["ssrcs"]["audio"] = 0
    with pytest.raises(ProtocolError, match=r"welcome.members\[1\].ssrcs: field 'audio'"):
        parse_server_message(json.dumps(welcome))
    welcome = json.loads(encode(SERVER_MESSAGES[1]))
    welcome["media"]["port"] = 70000
    with pytest.raises(ProtocolError, match="welcome.media: field 'port'"):
        parse_server_message(json.dumps(welcome))
    with pytest.raises(ProtocolError, match="unknown message type 'join'"):
        parse_server_message(encode(CLIENT_MESSAGES[0]))


# --- nothing crashes the parsers ----------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
field_names = st.sampled_from(
    ["type", "v", "room", "token", "identity", "name", "video_layers", "rtx", "payload", "to",
     "kind", "id", "you", "members", "media", "limits", "participant", "reason", "from", "code",
     "message", "fatal", "ref", "stats", "ssrcs", "audio", "video", "host", "port", "user"]
)  # fmt: skip
types = st.sampled_from(
    ["join", "relay", "leave", "ping", "stats", "welcome", "joined", "left", "error", "pong"]
)
near_messages = st.builds(
    lambda t, v, fields: {"type": t, "v": v, **fields},
    types,
    st.sampled_from([1, 1, 1, 2, True, "1"]),
    st.dictionaries(field_names, json_values, max_size=6),
)


def _parse_both(data: str | bytes) -> None:
    for parse in (parse_client_message, parse_server_message):
        try:
            parse(data)
        except ProtocolError as e:
            assert e.code and str(e)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_never_crashes_the_parsers(value: Any) -> None:
    _parse_both(json.dumps(value))


@settings(max_examples=300, deadline=None)
@given(near_messages)
def test_near_valid_messages_never_crash_the_parsers(value: dict[str, Any]) -> None:
    _parse_both(json.dumps(value))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_bytes_and_text_never_crash_the_parsers(data: bytes | str) -> None:
    _parse_both(data)
