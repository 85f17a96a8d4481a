"""Glue between a group's key schedule and SFrame: who encrypts and decrypts with what.

:class:`GroupMediaCrypto` keeps one :class:`~callpipe.e2ee.sframe.SFrameSender` and one
:class:`~callpipe.e2ee.sframe.SFrameReceiver` in step with a
:class:`~callpipe.e2ee.keys.GroupKeySchedule`: call :meth:`GroupMediaCrypto.sync` after feeding
the schedule a block, an ack or the clock, and act on what it returns (a ``True``
``keyframe_needed`` means: the send key changed, send a keyframe next).
"""

from __future__ import annotations

from dataclasses import dataclass

from .._lifetime import Closeable
from ..errors import CryptoError
from .keys import EpochExpired, GroupKeySchedule, SenderRevoked, SwitchSendKey
from .sframe import AES_128_GCM_SHA256_128, SFrameReceiver, SFrameSender

__all__ = ["GroupMediaCrypto", "SyncResult"]


@dataclass(frozen=True)
class SyncResult:
    """What one :meth:`GroupMediaCrypto.sync` did.

    :param keyframe_needed: the send key switched: the next video frame must be a keyframe.
    :param send_kid: the KID now used for sending, or None (no usable send key yet).
    :param added: KIDs whose receive keys were installed.
    :param removed: KIDs whose receive keys were dropped (expired epochs, removed members).
    """

    keyframe_needed: bool
    send_kid: int | None
    added: tuple[int, ...]
    removed: tuple[int, ...]


class GroupMediaCrypto(Closeable):
    """SFrame encryption for one member of a group call, keyed by its :class:`GroupKeySchedule`.

    :param schedule: the member's key schedule (fed blocks, acks and time by the caller).
    :param suite: SFrame cipher suite (default AES_128_GCM_SHA256_128).
    :param replay_window: receive replay window per KID, in frames (default 128).
    """

    def __init__(
        self,
        schedule: GroupKeySchedule,
        suite: int = AES_128_GCM_SHA256_128,
        replay_window: int = 128,
    ) -> None:
        self.schedule = schedule
        self.sender = SFrameSender(suite)
        self.receiver = SFrameReceiver(suite, replay_window=replay_window)
        self._installed: dict[int, bytes] = {}
        self._send_kid: int | None = None

    def sync(self, now: float) -> SyncResult:
        """Advance the schedule to ``now`` (s) and bring the SFrame keys in line with it."""
        keyframe = False
        removed: list[int] = []
        for event in self.schedule.tick(now):  # removals first, then the new keys
            if isinstance(event, EpochExpired):
                removed += [k for k in event.kids if self._drop(k)]
            elif isinstance(event, SenderRevoked):
                removed += [event.kid] if self._drop(event.kid) else []
            elif isinstance(event, SwitchSendKey):
                keyframe = True
        wanted = self.schedule.receive_keys()
        for kid in [k for k, key in self._installed.items() if wanted.get(k) != key]:
            self._drop(kid)
            removed.append(kid)
        added = []
        for kid, key in wanted.items():
            if kid not in self._installed:
                self.receiver.add_key(kid, key, now)
                self._installed[kid] = key
                added.append(kid)
        if self.schedule.send_epoch is None:
            if self._send_kid is not None:  # no usable key any more: stop encrypting at once
                self.sender.remove_key(self._send_kid)
            self._send_kid = None
        else:
            kid, key = self.schedule.send_key()
            if kid != self._send_kid:
                # the new key is active before the old one goes: a frame encrypted on another
                # thread meanwhile always finds a key
                self.sender.add_key(kid, key, activate=True)
                if self._send_kid is not None:  # the old key is never used again
                    self.sender.remove_key(self._send_kid)
                self._send_kid = kid
        return SyncResult(keyframe, self._send_kid, tuple(added), tuple(removed))

    def _drop(self, kid: int) -> bool:
        if self._installed.pop(kid, None) is None:
            return False
        self.receiver.remove_key(kid)
        return True

    def encrypt(self, frame: bytes, metadata: bytes = b"") -> bytes:
        """SFrame-encrypt one encoded frame with the current send key.

        :param frame: the encoded frame (bytes).
        :param metadata: bytes the SFU may read but not change (bound into the AAD).
        :raises CryptoError: no send key yet (before the first switch).
        """
        if self._send_kid is None:
            raise CryptoError("no send key yet: sync() after the first block")
        return self.sender.encrypt(frame, metadata)

    def decrypt(self, ciphertext: bytes, metadata: bytes = b"", now: float | None = None) -> bytes:
        """Decrypt one received SFrame ciphertext (raises AuthenticationError, ReplayError,
        UnknownKeyError; see :class:`~callpipe.e2ee.sframe.SFrameReceiver`).

        :param now: clock in s, for buffering frames whose key has not arrived yet.
        """
        return self.receiver.decrypt(ciphertext, metadata, now)

    def close(self) -> None:
        """Zeroise and free the native keys."""
        self.sender.close()
        self.receiver.close()
