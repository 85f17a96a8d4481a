"""SFrame, RFC 9605, exactly: media-frame encryption in C over OpenSSL 3 EVP.

An SFrame ciphertext is ``header || AEAD.Encrypt(sframe_key, nonce, header || metadata, pt)``
where the header carries the key id (KID) and a per-KID counter (CTR) in the compact encoding of
RFC 9605 section 4.3, ``(sframe_key, sframe_salt)`` come from the KID's base key by HKDF
(section 4.4.2) and ``nonce = sframe_salt XOR CTR``.  All five RFC cipher suites are
implemented (:class:`CipherSuite`); the default is AES_128_GCM_SHA256_128 (suite 4).

Two layers:

* **Low level** (conformance; RFC 9605 Appendix C is checked against these):
  :func:`encode_header`, :func:`decode_header`, :func:`derive_key_salt`, :func:`encrypt`,
  :func:`decrypt`.  They derive keys on every call, so they are slow; do not use them per frame.
* **Stateful**: :class:`SFrameSender` (encrypt-only keys, a per-KID counter that never repeats,
  an optional hook to persist counters before use) and :class:`SFrameReceiver` (decrypt-only
  keys, a replay window per KID, a brief buffer for frames whose KID is not known yet, stats).
  Both derive the key and salt once per KID and keep initialised OpenSSL contexts, so one frame
  costs about one AEAD call.  The GIL is released during the C work.

What SFrame does **not** protect (RFC 9605 section 7): the header (KID and CTR) is sent in clear
(authenticated, not confidential), so an observer learns who sends and how often; metadata is
authenticated but not encrypted; any holder of a KID's base key can forge frames for that KID
(no per-sender authentication — sign frames for that).

Failures and timing.  A receiver raises on every rejected frame but never answers the sender.
Header problems (truncation, non-minimal encodings) raise :class:`CryptoError`; a tag that does
not verify raises :class:`AuthenticationError`; replays raise :class:`ReplayError` (a subclass
of ``AuthenticationError``); an unknown KID raises :class:`UnknownKeyError`.  Which of these
happens depends only on public data (the header, the set of KIDs, the replay window) except for
the tag check itself: GCM tags are compared by OpenSSL in constant time and CTR+HMAC tags with
``CRYPTO_memcmp`` *before* any decryption; a frame that fails authentication costs the same
work as one that passes, up to the final copy.  Frames rejected on public grounds (bad header,
replay, unknown KID) are rejected early; that reveals nothing an observer of the wire does not
already know.

Keys expire: :meth:`SFrameReceiver.remove_key` drops a KID (an old epoch, typically ~10 s after
the switch) and zeroises its derived key; frames for a removed KID are then dropped (never
buffered).  :meth:`SFrameSender.remove_key` retires a KID but remembers its counter, so the KID
can never be used again from a lower counter by this sender.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import NoReturn

from .._lifetime import Closeable
from ..errors import AuthenticationError, ClosedError, CryptoError, NativeModuleError

try:
    from . import _sframe
except ImportError as e:  # pragma: no cover - only without a build
    raise NativeModuleError(
        "callpipe.e2ee._sframe is not built (run `make` or `pip install -e .`)", str(e)
    ) from e

__all__ = [
    "CipherSuite",
    "AES_128_CTR_HMAC_SHA256_80",
    "AES_128_CTR_HMAC_SHA256_64",
    "AES_128_CTR_HMAC_SHA256_32",
    "AES_128_GCM_SHA256_128",
    "AES_256_GCM_SHA512_128",
    "SuiteInfo",
    "suite_info",
    "MAX_COUNTER",
    "MAX_KID",
    "encode_header",
    "decode_header",
    "derive_key_salt",
    "encrypt",
    "decrypt",
    "ReplayError",
    "UnknownKeyError",
    "SFrameSender",
    "SFrameReceiver",
    "ReceiverStats",
    "ReleasedFrame",
]


class CipherSuite(IntEnum):
    """SFrame cipher suites (RFC 9605 section 8.1, IANA "SFrame Cipher Suites")."""

    AES_128_CTR_HMAC_SHA256_80 = 1
    AES_128_CTR_HMAC_SHA256_64 = 2
    AES_128_CTR_HMAC_SHA256_32 = 3
    AES_128_GCM_SHA256_128 = 4
    AES_256_GCM_SHA512_128 = 5


AES_128_CTR_HMAC_SHA256_80 = CipherSuite.AES_128_CTR_HMAC_SHA256_80
AES_128_CTR_HMAC_SHA256_64 = CipherSuite.AES_128_CTR_HMAC_SHA256_64
AES_128_CTR_HMAC_SHA256_32 = CipherSuite.AES_128_CTR_HMAC_SHA256_32
AES_128_GCM_SHA256_128 = CipherSuite.AES_128_GCM_SHA256_128
AES_256_GCM_SHA512_128 = CipherSuite.AES_256_GCM_SHA512_128

#: largest KID, and largest CTR value that may be used (both are 64-bit unsigned)
MAX_KID = (1 << 64) - 1
MAX_COUNTER = (1 << 64) - 1
_COUNTER_SPACE = 1 << 64


@dataclass(frozen=True)
class SuiteInfo:
    """The RFC 9605 constants of a cipher suite, all in bytes.

    :param nh: hash output size. :param nka: AES key size of the CTR+HMAC suites (0 for GCM).
    :param nk: AEAD key size. :param nn: nonce size. :param nt: tag size (per-frame overhead
        besides the header).
    """

    suite: CipherSuite
    nh: int
    nka: int
    nk: int
    nn: int
    nt: int


def _suite(suite: int) -> CipherSuite:
    try:
        return CipherSuite(suite)
    except ValueError:
        raise CryptoError(f"unknown SFrame cipher suite {suite!r} (valid: 1..5)") from None


def suite_info(suite: int) -> SuiteInfo:
    """The constants (Nh, Nka, Nk, Nn, Nt in bytes) of ``suite`` (1..5)."""
    s = _suite(suite)
    return SuiteInfo(s, *_sframe.suite_info(int(s)))


# -- low level ------------------------------------------------------------------------------
def encode_header(kid: int, ctr: int) -> bytes:
    """The SFrame header (RFC 9605 section 4.3) for ``kid`` and ``ctr``.

    :param kid: key id, 0..2**64-1.
    :param ctr: counter, 0..2**64-1.
    :returns: 1 to 17 bytes: the config byte ``X|KKK|Y|CCC``, then minimal big-endian KID and
        CTR bytes for values of 8 and above.
    """
    return _sframe.encode_header(kid, ctr)


def decode_header(data: bytes) -> tuple[int, int, int]:
    """Parse the SFrame header at the start of ``data``.

    :param data: an SFrame ciphertext or just its header (bytes-like); bytes after the header
        are ignored.
    :returns: ``(kid, ctr, header_len)``, header_len in bytes.
    :raises CryptoError: the header is truncated or not minimally encoded (an extended field
        with a value below 8 or a leading zero byte).
    """
    return _sframe.decode_header(data)


def derive_key_salt(suite: int, base_key: bytes, kid: int) -> tuple[bytes, bytes]:
    """``(sframe_key, sframe_salt)`` of RFC 9605 section 4.4.2.

    HKDF-Extract with an empty salt over ``base_key``, then HKDF-Expand with the labels
    ``"SFrame 1.0 Secret key " || u64be(kid) || u16be(suite)`` (Nk bytes) and
    ``"SFrame 1.0 Secret salt " || ...`` (Nn bytes), with the suite's hash.

    :param suite: cipher suite, 1..5.
    :param base_key: the base key, bytes-like, any length (bytes).
    :param kid: key id, 0..2**64-1.
    """
    _, key, salt = _sframe.derive(int(_suite(suite)), base_key, kid)
    return key, salt


def encrypt(
    suite: int, base_key: bytes, kid: int, ctr: int, metadata: bytes, plaintext: bytes
) -> bytes:
    """One SFrame ciphertext, deriving the key on the spot (conformance; slow per frame).

    :param suite: cipher suite, 1..5.
    :param base_key: the KID's base key (bytes).
    :param kid: key id, 0..2**64-1.
    :param ctr: counter, 0..2**64-1.  The caller guarantees (base_key, kid, ctr) is used once;
        :class:`SFrameSender` does this for you.
    :param metadata: authenticated, unencrypted application data (bytes; not sent).
    :param plaintext: the frame (bytes).
    :returns: ``header || ciphertext || tag``.
    """
    key = _sframe.Key(int(_suite(suite)), _sframe.ENCRYPT, base_key, kid)
    try:
        return key.seal(ctr, metadata, plaintext)
    finally:
        key.close()


def decrypt(suite: int, base_key: bytes, metadata: bytes, ciphertext: bytes) -> bytes:
    """Decrypt one SFrame ciphertext with ``base_key`` for the KID in its header.

    :param suite: cipher suite, 1..5.
    :param base_key: the base key of the KID in the header (bytes).
    :param metadata: the metadata given at encryption (bytes).
    :param ciphertext: the SFrame ciphertext (bytes).
    :raises CryptoError: malformed header, or shorter than a tag.
    :raises AuthenticationError: the tag did not verify (wrong key, tampering).
    """
    s = int(_suite(suite))
    kid, _, _ = _sframe.decode_header(ciphertext)
    key = _sframe.Key(s, _sframe.DECRYPT, base_key, kid, 0)
    try:
        res = key.open(ciphertext, metadata)
    finally:
        key.close()
    if isinstance(res, bytes):
        return res
    if res == _sframe.ERR_AUTH:
        raise AuthenticationError("SFrame authentication failed")
    raise CryptoError("malformed SFrame ciphertext (shorter than its header and tag)")


# -- errors ---------------------------------------------------------------------------------
class ReplayError(AuthenticationError):
    """A frame's counter was already accepted for its KID, or is older than the replay window.

    :param kid: the frame's KID. :param ctr: the frame's counter.
    :param too_old: True when below the window (may or may not be a replay), False when a
        duplicate.
    """

    def __init__(self, kid: int, ctr: int, too_old: bool) -> None:
        what = "older than the replay window" if too_old else "a replay"
        super().__init__(f"SFrame frame kid={kid} ctr={ctr} is {what}")
        self.kid, self.ctr, self.too_old = kid, ctr, too_old


class UnknownKeyError(CryptoError):
    """No key for the frame's KID.

    :param kid: the frame's KID.
    :param buffered: True if the frame was kept and will be decrypted by
        :meth:`SFrameReceiver.add_key` (if that comes soon enough); False if it was dropped.
    """

    def __init__(self, kid: int, buffered: bool) -> None:
        state = "buffered until the key arrives" if buffered else "dropped"
        super().__init__(f"no SFrame key for kid={kid}; frame {state}")
        self.kid, self.buffered = kid, buffered


# -- shared helpers -------------------------------------------------------------------------
def _check_kid(kid: int) -> int:
    if not isinstance(kid, int) or isinstance(kid, bool):
        raise TypeError(f"kid must be an int, got {type(kid).__name__}")
    if not 0 <= kid <= MAX_KID:
        raise ValueError(f"kid must be in 0..2**64-1, got {kid}")
    return kid


class _Fingerprints:
    """Keyed digests of base keys, to tell "same key" from "different key" without keeping it."""

    def __init__(self) -> None:
        self._salt = os.urandom(32)

    def of(self, base_key: bytes) -> bytes:
        try:
            data = memoryview(base_key).tobytes()
        except TypeError:
            raise TypeError(f"base_key must be bytes-like, got {type(base_key).__name__}") from None
        return hmac.new(self._salt, data, hashlib.sha256).digest()


# -- sender ---------------------------------------------------------------------------------
class _SendState:
    __slots__ = ("key", "retired_next", "fingerprint")

    def __init__(self, key: _sframe.Key | None, fp: bytes) -> None:
        self.key = key  # None once retired
        self.retired_next = 0  # the next counter, kept when retired
        self.fingerprint = fp

    @property
    def next(self) -> int:
        return self.key.next_counter if self.key is not None else self.retired_next


class SFrameSender(Closeable):
    """Encrypts frames with encrypt-only keys; a per-KID counter that never repeats.

    Each KID has its own counter, starting at 0 (or at ``start_counter``).  A counter value is
    used at most once per KID for the life of this object: re-adding a KID continues its
    counter (even after :meth:`remove_key`), asking to restart it lower is refused, and once the
    counter passes 2**64-1 the KID refuses to encrypt.  A KID still in use cannot be given a
    different key (remove it first; its counter still continues).

    Across restarts, pass ``persist_counter``: before any counter value is first used, the hook
    is called as ``persist_counter(kid, next_ctr)`` with a value ``next_ctr`` to resume from
    (``add_key(kid, key, start_counter=next_ctr)`` after a restart).  Counters are reserved in
    blocks of ``reservation_block``, so the hook runs once per block rather than per frame (RFC
    9605 section 9.1); a crash skips at most one block.  If the hook raises, nothing is encrypted
    and the exception propagates.

    :param suite: cipher suite (default AES_128_GCM_SHA256_128).
    :param persist_counter: optional ``(kid, next_ctr) -> None`` hook, see above.
    :param reservation_block: counters reserved per hook call (>= 1).

    Thread-safe: the counter is taken atomically per frame, so concurrent :meth:`encrypt` calls
    never share one.  Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        suite: int = AES_128_GCM_SHA256_128,
        *,
        persist_counter: Callable[[int, int], None] | None = None,
        reservation_block: int = 4096,
    ) -> None:
        self.suite = _suite(suite)
        if not isinstance(reservation_block, int) or reservation_block < 1:
            raise ValueError("reservation_block must be an int >= 1 (counters)")
        self._persist = persist_counter
        self._block = reservation_block
        self._states: dict[int, _SendState] = {}
        self._active_key: _sframe.Key | None = None
        self._active_kid: int | None = None
        self._fp = _Fingerprints()
        self._lock = threading.Lock()
        self._closed = False

    # lifetime
    def close(self) -> None:
        """Zeroise and free every key; idempotent.  Counters are forgotten."""
        with self._lock:
            self._closed = True
            self._active_key, self._active_kid = None, None
            for st in self._states.values():
                if st.key is not None:
                    st.key.close()
                    st.key = None
            self._states.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("SFrameSender is closed")

    # keys
    def add_key(
        self,
        kid: int,
        base_key: bytes,
        *,
        start_counter: int | None = None,
        activate: bool | None = None,
    ) -> None:
        """Add an encrypt-only base key for ``kid``.

        :param kid: key id, 0..2**64-1.
        :param base_key: the base key (bytes; e.g. 16 or 32 bytes).  It must be this sender's
            alone (RFC 9605 4.4.1: never shared by two senders).
        :param start_counter: first counter to use: a value saved by ``persist_counter`` when
            resuming, or an explicit start for conformance tests (RFC 9605 Appendix C.3 uses
            0x4567).  Default: 0 for a new KID, the next unused value for a known one.  Refused
            (CryptoError) if lower than a value this sender may already have used.
        :param activate: make this the key :meth:`encrypt` uses; default: only if no key is
            active yet.
        """
        _check_kid(kid)
        fp = self._fp.of(base_key)
        if start_counter is not None:
            if not isinstance(start_counter, int) or isinstance(start_counter, bool):
                raise TypeError("start_counter must be an int")
            if not 0 <= start_counter <= _COUNTER_SPACE:
                raise ValueError("start_counter must be in 0..2**64")
        with self._lock:
            self._check_open()
            st = self._states.get(kid)
            nxt = 0 if st is None else st.next
            if st is not None:
                if st.key is not None and not hmac.compare_digest(st.fingerprint, fp):
                    raise CryptoError(
                        f"kid {kid} is in use with a different base key; remove_key() it first"
                    )
                if start_counter is not None and start_counter < nxt:
                    raise CryptoError(
                        f"kid {kid}: counter {start_counter} is below the next unused counter "
                        f"{nxt}; refusing to reuse counters"
                    )
            if start_counter is not None:
                nxt = start_counter
            if st is None or st.key is None:
                key = _sframe.Key(int(self.suite), _sframe.ENCRYPT, base_key, kid)
                if st is None:
                    st = _SendState(key, fp)
                    self._states[kid] = st
                else:
                    st.key, st.fingerprint = key, fp
            assert st.key is not None
            st.key.set_next_counter(nxt)
            # with a hook, nothing is reserved until it ran; without, everything is
            st.key.reserve(nxt if self._persist is not None else _COUNTER_SPACE)
            if activate or (activate is None and self._active_key is None):
                self._active_key, self._active_kid = st.key, kid

    def remove_key(self, kid: int) -> None:
        """Retire ``kid``: zeroise its key; its counter is remembered (no reuse if re-added)."""
        with self._lock:
            self._check_open()
            st = self._states.get(kid)
            if st is None or st.key is None:
                raise KeyError(kid)
            if self._active_key is st.key:
                self._active_key, self._active_kid = None, None
            st.retired_next = st.key.next_counter
            st.key.close()
            st.key = None

    def set_active(self, kid: int) -> None:
        """Encrypt with ``kid`` from now on (after receivers acknowledged it, RFC 9605 4.4.1)."""
        with self._lock:
            self._check_open()
            st = self._states.get(kid)
            if st is None or st.key is None:
                raise CryptoError(f"no SFrame key for kid {kid}")
            self._active_key, self._active_kid = st.key, kid

    @property
    def active_kid(self) -> int | None:
        """The KID :meth:`encrypt` uses, or None."""
        return self._active_kid

    @property
    def kids(self) -> list[int]:
        """KIDs with a usable key."""
        return [k for k, st in self._states.items() if st.key is not None]

    def next_counter(self, kid: int) -> int:
        """The counter the next frame with ``kid`` will use (2**64 once exhausted)."""
        st = self._states.get(kid)
        if st is None:
            raise KeyError(kid)
        return st.next

    # frames
    def encrypt(self, plaintext: bytes, metadata: bytes = b"") -> bytes:
        """Encrypt one frame with the active key.

        :param plaintext: the encoded frame (bytes-like, any length up to 1 GiB).
        :param metadata: data the receiver must see unchanged (authenticated, not encrypted,
            not included in the output), e.g. a codec's cleartext prefix (bytes).
        :returns: the SFrame ciphertext: header (1-17 bytes) || ciphertext || tag (Nt bytes).
        :raises CryptoError: no active key, or the KID's counter is exhausted.

        The counter is taken before anything else, so a call that then fails (e.g. a TypeError
        for a ``str`` plaintext) still consumes one value: values are skipped, never reused.
        """
        key = self._active_key
        if key is not None:
            try:
                out = key.seal_next(metadata, plaintext)
            except ClosedError:  # removed or closed meanwhile: report it properly below
                out = None
            if out is not None:
                return out
        return self._encrypt_slow(plaintext, metadata)

    def _encrypt_slow(self, plaintext: bytes, metadata: bytes) -> bytes:
        with self._lock:
            self._check_open()
            key, kid = self._active_key, self._active_kid
            if key is None or kid is None:
                raise CryptoError("SFrameSender has no active key (add_key / set_active)")
            while True:
                out = key.seal_next(metadata, plaintext)
                if out is not None:
                    return out
                # the next counter is not reserved yet: persist, then use it
                assert self._persist is not None
                new = min(key.next_counter + self._block, _COUNTER_SPACE)
                self._persist(kid, new)
                key.reserve(new)


# -- receiver -------------------------------------------------------------------------------
@dataclass
class ReceiverStats:
    """Counts of what an :class:`SFrameReceiver` did with frames (all in frames).

    ``unknown_kid`` counts frames whose KID had no key when they arrived; of those,
    ``unknown_kid_buffered`` were kept, ``unknown_kid_released`` later decrypted by
    :meth:`SFrameReceiver.add_key` and ``unknown_kid_dropped`` discarded (no ``now``, buffer
    full, too old, or KID removed).  ``replays`` are duplicates, ``too_old`` are below the
    window; ``malformed_headers`` includes frames too short for their tag.
    """

    frames_decrypted: int = 0
    auth_failures: int = 0
    replays: int = 0
    too_old: int = 0
    unknown_kid: int = 0
    unknown_kid_buffered: int = 0
    unknown_kid_released: int = 0
    unknown_kid_dropped: int = 0
    malformed_headers: int = 0


@dataclass(frozen=True)
class ReleasedFrame:
    """A buffered frame decrypted once its key arrived.

    :param kid: its KID. :param ctr: its counter. :param plaintext: the frame (bytes).
    :param metadata: the metadata it was received with (bytes).
    """

    kid: int
    ctr: int
    plaintext: bytes
    metadata: bytes


class SFrameReceiver(Closeable):
    """Decrypts frames with decrypt-only keys, by the KID in each header.

    * Replay window per KID (RFC 3711 section 3.3.2 style): a counter already accepted, or more
      than ``replay_window`` below the highest accepted one, is rejected (:class:`ReplayError`)
      before any decryption.  The window moves only after a frame authenticated.
    * Unknown KID: the frame is kept briefly, when ``now`` is passed to :meth:`decrypt` (at most
      ``buffer_frames`` frames and ``buffer_bytes`` bytes, each for at most ``buffer_max_age``
      seconds; the oldest go first), and decrypted by :meth:`add_key` for that KID.  Without
      ``now``, or for a removed KID, it is dropped.  Either way :class:`UnknownKeyError`.
    * Nothing is ever sent back; every outcome is counted in :attr:`stats`.

    :param suite: cipher suite (default AES_128_GCM_SHA256_128).
    :param replay_window: window size in counters (default 128; 0 disables replay checks;
        at most 65536).
    :param buffer_frames: most frames kept for unknown KIDs (frames).
    :param buffer_bytes: most bytes kept for unknown KIDs (bytes).
    :param buffer_max_age: how long a frame waits for its key (s).

    Thread-safe: the per-frame path takes no receiver-wide lock (each key serialises itself and
    counts its own successes); key changes, rejections and the buffer take one lock.  Use as a
    context manager or call :meth:`close`.
    """

    def __init__(
        self,
        suite: int = AES_128_GCM_SHA256_128,
        *,
        replay_window: int = 128,
        buffer_frames: int = 64,
        buffer_bytes: int = 4 << 20,
        buffer_max_age: float = 1.0,
    ) -> None:
        self.suite = _suite(suite)
        if not isinstance(replay_window, int) or not 0 <= replay_window <= _sframe.MAX_WINDOW:
            raise ValueError(f"replay_window must be in 0..{_sframe.MAX_WINDOW} counters")
        if buffer_frames < 0 or buffer_bytes < 0 or buffer_max_age < 0:
            raise ValueError("buffer limits must be >= 0")
        self.replay_window = replay_window
        self.buffer_frames = buffer_frames
        self.buffer_bytes = buffer_bytes
        self.buffer_max_age = float(buffer_max_age)
        self._keys: dict[int, _sframe.Key] = {}
        self._fps: dict[int, bytes] = {}
        self._removed: set[int] = set()
        # (arrival time s, kid, ciphertext, metadata), oldest first
        self._buffer: deque[tuple[float, int, bytes, bytes]] = deque()
        self._buffered_bytes = 0
        self._fp = _Fingerprints()
        self._stats = ReceiverStats()  # frames_decrypted is kept by the keys (see stats)
        self._retired_decrypted = 0  # frames decrypted by keys since removed
        self._lock = threading.Lock()
        self._closed = False

    # lifetime
    def close(self) -> None:
        """Zeroise and free every key and drop buffered frames; idempotent."""
        with self._lock:
            self._closed = True
            for key in self._keys.values():
                self._retired_decrypted += key.opened
                key.close()
            self._keys.clear()
            self._fps.clear()
            self._buffer.clear()
            self._buffered_bytes = 0

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("SFrameReceiver is closed")

    @property
    def stats(self) -> ReceiverStats:
        """A snapshot of the counters."""
        with self._lock:
            live = sum(k.opened for k in self._keys.values())
            return replace(self._stats, frames_decrypted=self._retired_decrypted + live)

    @property
    def kids(self) -> list[int]:
        """KIDs with a key."""
        return list(self._keys)

    def buffered(self) -> int:
        """Frames waiting for a key (frames)."""
        return len(self._buffer)

    # keys
    def add_key(self, kid: int, base_key: bytes, now: float | None = None) -> list[ReleasedFrame]:
        """Add a decrypt-only base key for ``kid`` (usable at once) and release its buffer.

        :param kid: key id, 0..2**64-1.
        :param base_key: the sender's base key for ``kid`` (bytes).
        :param now: current time (s, same clock as :meth:`decrypt`); buffered frames older than
            ``buffer_max_age`` are dropped instead of released.
        :returns: the buffered frames for ``kid`` that decrypted, in arrival order.
        :raises CryptoError: ``kid`` already has a *different* key (re-adding the same key is a
            no-op that keeps the replay window).
        """
        _check_kid(kid)
        fp = self._fp.of(base_key)
        with self._lock:
            self._check_open()
            old = self._fps.get(kid)
            if old is not None:
                if hmac.compare_digest(old, fp):
                    return []
                raise CryptoError(f"kid {kid} already has a different key; remove_key() it first")
            key = _sframe.Key(int(self.suite), _sframe.DECRYPT, base_key, kid, self.replay_window)
            self._keys[kid] = key
            self._fps[kid] = fp
            self._removed.discard(kid)
            if now is not None:
                self._expire(now)
            return self._release(kid, key)

    def remove_key(self, kid: int) -> None:
        """Drop ``kid`` (e.g. an expired epoch): its key is zeroised, later frames are dropped.

        Re-adding the same key later starts a fresh replay window, so frames seen before could
        be accepted again: use new KIDs for new keys instead.
        """
        with self._lock:
            self._check_open()
            key = self._keys.pop(kid, None)
            if key is None:
                raise KeyError(kid)
            self._retired_decrypted += key.opened
            key.close()
            del self._fps[kid]
            self._removed.add(kid)

    def has_key(self, kid: int) -> bool:
        """True if ``kid`` has a key."""
        return kid in self._keys

    # frames
    def decrypt(self, ciphertext: bytes, metadata: bytes = b"", now: float | None = None) -> bytes:
        """Authenticate and decrypt one SFrame ciphertext.

        :param ciphertext: the SFrame ciphertext (bytes-like).
        :param metadata: the metadata the sender authenticated (bytes).
        :param now: current time (s, any monotonic clock); needed to buffer frames with an
            unknown KID and to age them out.
        :returns: the plaintext frame (bytes).
        :raises AuthenticationError: the tag did not verify (tampered, wrong key).
        :raises ReplayError: duplicate counter, or below the replay window.
        :raises UnknownKeyError: no key for the KID (the frame may have been buffered).
        :raises CryptoError: malformed header or too short.
        """
        # Fast path without the receiver's lock: the key lookup is one atomic dict read, the
        # key serialises itself and counts its own successes (see `stats`).
        if now is not None and self._buffer:
            self.expire(now)
        try:
            res = _sframe.open_with(self._keys, ciphertext, metadata)
        except ClosedError:  # the key was removed (or we were closed) meanwhile
            res = (_sframe.ERR_UNKNOWN_KID, None, None)
        if type(res) is bytes:
            return res
        return self._failed(res, ciphertext, metadata, now)

    def _failed(
        self,
        res: bytes | tuple[int, int | None, int | None],
        ciphertext: bytes,
        metadata: bytes,
        now: float | None,
    ) -> NoReturn:
        with self._lock:
            if self._closed:
                raise ClosedError("SFrameReceiver is closed")
            assert not isinstance(res, bytes)
            code, kid, ctr = res
            if code == _sframe.ERR_UNKNOWN_KID:
                if kid is None:
                    kid = _sframe.decode_header(ciphertext)[0]
                self._stats.unknown_kid += 1
                raise UnknownKeyError(kid, self._keep(kid, ciphertext, metadata, now))
            raise self._rejected(kid, ctr, code)

    def expire(self, now: float) -> int:
        """Drop buffered frames older than ``buffer_max_age`` at ``now`` (s); returns how many."""
        with self._lock:
            return self._expire(now)

    # internals (lock held)
    def _rejected(self, kid: int | None, ctr: int | None, code: object) -> CryptoError:
        s = self._stats
        if code == _sframe.ERR_AUTH:
            s.auth_failures += 1
            return AuthenticationError("SFrame authentication failed")
        if code == _sframe.ERR_REPLAY and kid is not None and ctr is not None:
            s.replays += 1
            return ReplayError(kid, ctr, False)
        if code == _sframe.ERR_TOO_OLD and kid is not None and ctr is not None:
            s.too_old += 1
            return ReplayError(kid, ctr, True)
        s.malformed_headers += 1
        return CryptoError(
            "malformed SFrame ciphertext (truncated or non-minimal header, or shorter than the tag)"
        )

    def _keep(self, kid: int, ciphertext: bytes, metadata: bytes, now: float | None) -> bool:
        if now is None or kid in self._removed or self.buffer_frames == 0:
            self._stats.unknown_kid_dropped += 1
            return False
        ct, md = bytes(ciphertext), bytes(metadata)
        size = len(ct) + len(md)
        if size > self.buffer_bytes:
            self._stats.unknown_kid_dropped += 1
            return False
        while self._buffer and (
            len(self._buffer) >= self.buffer_frames
            or self._buffered_bytes + size > self.buffer_bytes
        ):
            self._drop_oldest()
        self._buffer.append((float(now), kid, ct, md))
        self._buffered_bytes += size
        self._stats.unknown_kid_buffered += 1
        return True

    def _drop_oldest(self) -> None:
        _, _, ct, md = self._buffer.popleft()
        self._buffered_bytes -= len(ct) + len(md)
        self._stats.unknown_kid_dropped += 1

    def _expire(self, now: float) -> int:
        n = 0
        while self._buffer and now - self._buffer[0][0] > self.buffer_max_age:
            self._drop_oldest()
            n += 1
        return n

    def _release(self, kid: int, key: _sframe.Key) -> list[ReleasedFrame]:
        if not any(item[1] == kid for item in self._buffer):
            return []
        out: list[ReleasedFrame] = []
        keep: deque[tuple[float, int, bytes, bytes]] = deque()
        for item in self._buffer:
            if item[1] != kid:
                keep.append(item)
                continue
            _, _, ct, md = item
            self._buffered_bytes -= len(ct) + len(md)
            res = key.open(ct, md)
            if isinstance(res, bytes):
                self._stats.unknown_kid_released += 1
                out.append(ReleasedFrame(kid, _sframe.decode_header(ct)[1], res, md))
            else:
                self._rejected(kid, _sframe.decode_header(ct)[1], res)
        self._buffer = keep
        return out
