"""End-to-end encryption: SFrame (RFC 9605), 1:1 committed key exchange, group roster chain.

* :mod:`~callpipe.e2ee.sframe` — per-frame encryption (native, over OpenSSL): ``SFrameSender``,
  ``SFrameReceiver`` and the RFC's low-level functions.
* :mod:`~callpipe.e2ee.handshake` — 1:1 calls: committed X25519, per-direction keys, 4 emoji.
* :mod:`~callpipe.e2ee.roster`, :mod:`~callpipe.e2ee.keys` — group calls: a signed, hash-chained
  roster with a fresh group key per membership change, and the per-sender key schedule.
* :mod:`~callpipe.e2ee.verify` — group verification by commit–reveal (4 emoji).
* :mod:`~callpipe.e2ee.media` — keeps SFrame keys in step with a group's key schedule.
* :mod:`~callpipe.e2ee.encoding` — the canonical encoding of everything signed or hashed.

Threat model and limits: ``docs/SECURITY.md``.
"""
