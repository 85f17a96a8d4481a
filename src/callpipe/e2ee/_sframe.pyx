# cython: language_level=3
"""Bindings of native/src/cp_sframe.c (SFrame, RFC 9605, over OpenSSL 3 EVP).

Low level; the public API is :mod:`callpipe.e2ee.sframe`.  Inputs are any bytes-like objects
(read through the buffer protocol, held for the duration of the call); outputs are ``bytes``.
The GIL is released around every C call that does cryptography (key derivation, sealing,
opening, context set-up and teardown).  The header codec and the suite-table lookup
(arithmetic over at most 17 bytes, no locks, ~10 ns) run with the GIL held: releasing it would
cost more than the call.  A :class:`Key` serialises its own use with a lock, so sharing one
between threads is safe (but not parallel).

One error gate, :func:`_check`: C status codes become :class:`callpipe.errors.CryptoError`
(or :class:`~callpipe.errors.AuthenticationError`), with OpenSSL's own message attached as
``library_message`` when OpenSSL failed.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.pythread cimport (
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
    WAIT_LOCK,
)
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from ..errors import AuthenticationError, ClosedError, CryptoError


cdef extern from "openssl/err.h" nogil:
    unsigned long ERR_get_error()
    void ERR_error_string_n(unsigned long e, char *buf, size_t len)
    void ERR_clear_error()


cdef extern from "callpipe/cp_sframe.h" nogil:
    enum:
        CP_SFRAME_OK
        CP_SFRAME_ERR_AUTH
        CP_SFRAME_ERR_HEADER
        CP_SFRAME_ERR_SUITE
        CP_SFRAME_ERR_ARG
        CP_SFRAME_ERR_BUFFER
        CP_SFRAME_ERR_NOMEM
        CP_SFRAME_ERR_CRYPTO
        CP_SFRAME_ERR_REPLAY
        CP_SFRAME_ERR_TOO_OLD
        CP_SFRAME_ERR_KID
        CP_SFRAME_ERR_DIRECTION
        CP_SFRAME_MAX_HEADER
        CP_SFRAME_MAX_KEY
        CP_SFRAME_MAX_HASH
        CP_SFRAME_MAX_WINDOW
        CP_SFRAME_ENCRYPT
        CP_SFRAME_DECRYPT

    ctypedef struct cp_sframe_suite_info:
        uint16_t id
        size_t nh
        size_t nka
        size_t nk
        size_t nn
        size_t nt

    ctypedef struct cp_sframe_key:
        pass

    ctypedef struct cp_sframe_aead:
        pass

    int cp_sframe_suite(int suite, cp_sframe_suite_info *info)
    size_t cp_sframe_header_len(uint64_t kid, uint64_t ctr)
    size_t cp_sframe_encode_header(uint64_t kid, uint64_t ctr, uint8_t *out)
    int cp_sframe_decode_header(const uint8_t *data, size_t len, uint64_t *kid, uint64_t *ctr,
                                size_t *header_len)
    int cp_sframe_derive_key_salt(int suite, const uint8_t *base_key, size_t base_key_len,
                                  uint64_t kid, uint8_t *secret_out, uint8_t *key_out,
                                  uint8_t *salt_out)
    int cp_sframe_aead_seal(int suite, const uint8_t *key, const uint8_t *nonce,
                            const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                            size_t pt_len, uint8_t *out)
    int cp_sframe_aead_open(int suite, const uint8_t *key, const uint8_t *nonce,
                            const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                            size_t ct_len, uint8_t *out)
    cp_sframe_aead *cp_sframe_aead_new(int suite, int direction, const uint8_t *key, int *status)
    void cp_sframe_aead_free(cp_sframe_aead *aead)
    int cp_sframe_aead_ctx_seal(cp_sframe_aead *aead, const uint8_t *nonce, const uint8_t *aad,
                                size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out)
    int cp_sframe_aead_ctx_open(cp_sframe_aead *aead, const uint8_t *nonce, const uint8_t *aad,
                                size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *out)
    cp_sframe_key *cp_sframe_key_new(int suite, int direction, const uint8_t *base_key,
                                     size_t base_key_len, uint64_t kid, uint32_t window,
                                     int *status)
    void cp_sframe_key_free(cp_sframe_key *key)
    size_t cp_sframe_key_ciphertext_len(const cp_sframe_key *key, uint64_t ctr, size_t pt_len)
    int cp_sframe_key_encrypt(cp_sframe_key *key, uint64_t ctr, const uint8_t *metadata,
                              size_t metadata_len, const uint8_t *pt, size_t pt_len,
                              uint8_t *out, size_t out_cap, size_t *out_len)
    int cp_sframe_key_decrypt(cp_sframe_key *key, const uint8_t *frame, size_t frame_len,
                              const uint8_t *metadata, size_t metadata_len, uint8_t *out,
                              size_t out_cap, size_t *out_len, uint64_t *ctr_out)


# Status codes, for callpipe.e2ee.sframe (Key.open returns them for rejected frames).
OK = CP_SFRAME_OK
ERR_AUTH = CP_SFRAME_ERR_AUTH
ERR_HEADER = CP_SFRAME_ERR_HEADER
ERR_REPLAY = CP_SFRAME_ERR_REPLAY
ERR_TOO_OLD = CP_SFRAME_ERR_TOO_OLD
ERR_KID = CP_SFRAME_ERR_KID
#: open_with(): no key for the frame's KID (Python-level status, not from C)
ERR_UNKNOWN_KID = 100
ENCRYPT = CP_SFRAME_ENCRYPT
DECRYPT = CP_SFRAME_DECRYPT
MAX_HEADER = CP_SFRAME_MAX_HEADER
MAX_WINDOW = CP_SFRAME_MAX_WINDOW

cdef dict _MESSAGES = {
    CP_SFRAME_ERR_AUTH: "SFrame authentication failed",
    CP_SFRAME_ERR_HEADER: "malformed SFrame ciphertext (truncated or non-minimal header, or "
                          "shorter than the tag)",
    CP_SFRAME_ERR_SUITE: "unknown SFrame cipher suite",
    CP_SFRAME_ERR_ARG: "invalid argument to SFrame (length out of range)",
    CP_SFRAME_ERR_BUFFER: "SFrame output buffer too small (internal error)",
    CP_SFRAME_ERR_NOMEM: "out of memory in SFrame",
    CP_SFRAME_ERR_CRYPTO: "OpenSSL failed inside SFrame",
    CP_SFRAME_ERR_REPLAY: "SFrame counter already received (replay)",
    CP_SFRAME_ERR_TOO_OLD: "SFrame counter is older than the replay window",
    CP_SFRAME_ERR_KID: "SFrame KID does not match the key",
    CP_SFRAME_ERR_DIRECTION: "SFrame key used in the wrong direction (encrypt-only vs "
                             "decrypt-only)",
}


cdef str _openssl_message():
    cdef unsigned long e
    cdef char buf[256]
    parts = []
    while True:
        e = ERR_get_error()
        if e == 0:
            break
        ERR_error_string_n(e, buf, sizeof(buf))
        parts.append(buf.decode("ascii", "replace"))
    return "; ".join(parts)


cdef int _check(int rc) except -1:
    """The error gate: raise the typed error for a C status, else return 0."""
    if rc == CP_SFRAME_OK:
        return 0
    lib = _openssl_message() if rc == CP_SFRAME_ERR_CRYPTO else ""
    ERR_clear_error()
    msg = _MESSAGES.get(rc, f"SFrame error {rc}")
    if rc == CP_SFRAME_ERR_AUTH:
        raise AuthenticationError(msg)
    raise CryptoError(msg, lib or None)


cdef inline int _suite_info(int suite, cp_sframe_suite_info *info) except -1:
    if cp_sframe_suite(suite, info) != CP_SFRAME_OK:
        raise CryptoError(f"unknown SFrame cipher suite {suite!r} (valid: 1..5)")
    return 0


cdef inline uint64_t _u64(object v, str name) except? 0xFFFFFFFFFFFFFFFF:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < 0 or v > 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"{name} must be in 0..2**64-1, got {v}")
    return <uint64_t>v


cdef inline int _get(object obj, Py_buffer *view, str name) except -1:
    try:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
    except TypeError:
        raise TypeError(f"{name} must be bytes-like, got {type(obj).__name__}") from None
    return 0


def suite_info(int suite):
    """RFC 9605 constants of a suite: ``(Nh, Nka, Nk, Nn, Nt)`` in bytes."""
    cdef cp_sframe_suite_info info
    _suite_info(suite, &info)
    return (info.nh, info.nka, info.nk, info.nn, info.nt)


def encode_header(kid, ctr):
    """The SFrame header (section 4.3) for ``kid`` and ``ctr`` (each 0..2**64-1)."""
    cdef uint64_t k = _u64(kid, "kid"), c = _u64(ctr, "ctr")
    cdef uint8_t buf[CP_SFRAME_MAX_HEADER]
    cdef size_t n = cp_sframe_encode_header(k, c, buf)
    return PyBytes_FromStringAndSize(<char *>buf, n)


def decode_header(data):
    """``(kid, ctr, header_len)`` of the header at the start of ``data``; CryptoError if bad."""
    cdef Py_buffer v
    cdef uint64_t kid = 0, ctr = 0
    cdef size_t hlen = 0
    cdef int rc
    _get(data, &v, "data")
    try:
        rc = cp_sframe_decode_header(<const uint8_t *>v.buf, <size_t>v.len, &kid, &ctr, &hlen)
    finally:
        PyBuffer_Release(&v)
    _check(rc)
    return (kid, ctr, hlen)


def derive(int suite, base_key, kid):
    """``(sframe_secret, sframe_key, sframe_salt)`` of section 4.4.2."""
    cdef cp_sframe_suite_info info
    cdef Py_buffer v
    cdef uint64_t k = _u64(kid, "kid")
    cdef uint8_t secret[CP_SFRAME_MAX_HASH]
    cdef uint8_t key[CP_SFRAME_MAX_KEY]
    cdef uint8_t salt[16]
    cdef int rc
    _suite_info(suite, &info)
    _get(base_key, &v, "base_key")
    try:
        with nogil:
            rc = cp_sframe_derive_key_salt(suite, <const uint8_t *>v.buf, <size_t>v.len, k,
                                           secret, key, salt)
    finally:
        PyBuffer_Release(&v)
    _check(rc)
    return (PyBytes_FromStringAndSize(<char *>secret, info.nh),
            PyBytes_FromStringAndSize(<char *>key, info.nk),
            PyBytes_FromStringAndSize(<char *>salt, info.nn))


def aead_seal(int suite, key, nonce, aad, pt):
    """The suite's AEAD.Encrypt(key, nonce, aad, pt) -> ct || tag (section 4.5)."""
    cdef cp_sframe_suite_info info
    cdef Py_buffer vk, vn, va, vp
    cdef int rc
    cdef object out
    cdef uint8_t *o
    _suite_info(suite, &info)
    _get(key, &vk, "key")
    try:
        _get(nonce, &vn, "nonce")
        try:
            if <size_t>vk.len != info.nk or <size_t>vn.len != info.nn:
                raise CryptoError(f"key must be {info.nk} bytes and nonce {info.nn} bytes")
            _get(aad, &va, "aad")
            try:
                _get(pt, &vp, "pt")
                try:
                    out = PyBytes_FromStringAndSize(NULL, vp.len + <Py_ssize_t>info.nt)
                    o = <uint8_t *>PyBytes_AS_STRING(out)
                    with nogil:
                        rc = cp_sframe_aead_seal(suite, <const uint8_t *>vk.buf,
                                                 <const uint8_t *>vn.buf,
                                                 <const uint8_t *>va.buf, <size_t>va.len,
                                                 <const uint8_t *>vp.buf, <size_t>vp.len, o)
                finally:
                    PyBuffer_Release(&vp)
            finally:
                PyBuffer_Release(&va)
        finally:
            PyBuffer_Release(&vn)
    finally:
        PyBuffer_Release(&vk)
    _check(rc)
    return out


def aead_open(int suite, key, nonce, aad, ct):
    """The suite's AEAD.Decrypt(key, nonce, aad, ct || tag) -> pt; AuthenticationError."""
    cdef cp_sframe_suite_info info
    cdef Py_buffer vk, vn, va, vc
    cdef int rc
    cdef object out
    cdef uint8_t *o
    _suite_info(suite, &info)
    _get(key, &vk, "key")
    try:
        _get(nonce, &vn, "nonce")
        try:
            if <size_t>vk.len != info.nk or <size_t>vn.len != info.nn:
                raise CryptoError(f"key must be {info.nk} bytes and nonce {info.nn} bytes")
            _get(aad, &va, "aad")
            try:
                _get(ct, &vc, "ct")
                try:
                    if <size_t>vc.len < info.nt:
                        raise CryptoError(f"ciphertext shorter than the {info.nt}-byte tag")
                    out = PyBytes_FromStringAndSize(NULL, vc.len - <Py_ssize_t>info.nt)
                    o = <uint8_t *>PyBytes_AS_STRING(out)
                    with nogil:
                        rc = cp_sframe_aead_open(suite, <const uint8_t *>vk.buf,
                                                 <const uint8_t *>vn.buf,
                                                 <const uint8_t *>va.buf, <size_t>va.len,
                                                 <const uint8_t *>vc.buf, <size_t>vc.len, o)
                finally:
                    PyBuffer_Release(&vc)
            finally:
                PyBuffer_Release(&va)
        finally:
            PyBuffer_Release(&vn)
    finally:
        PyBuffer_Release(&vk)
    _check(rc)
    return out


cdef class Key:
    """A derived SFrame key for one KID and one direction, with cached EVP contexts.

    :attr:`opened` counts the frames this key authenticated and decrypted.

    :param suite: cipher suite id (1..5).
    :param direction: :data:`ENCRYPT` or :data:`DECRYPT` (a key is never both, RFC 9605 4.4.1).
    :param base_key: the base key (bytes-like, any length).
    :param kid: the key id, 0..2**64-1.
    :param window: replay window in counters (decrypt keys; 0 disables).

    Encrypt keys also hold the KID's counter (:meth:`seal_next`): the next value to use and the
    reserved bound below which values may be used without persisting first.  The counter is
    taken under the GIL before any work, so two threads never get the same value.
    """

    cdef cp_sframe_key *_key
    cdef PyThread_type_lock _lock
    cdef readonly object kid
    cdef readonly int suite
    cdef readonly int direction
    cdef size_t _nt
    cdef uint64_t _kid
    cdef uint64_t _next
    cdef bint _exhausted
    cdef uint64_t _reserved
    cdef bint _reserved_all
    cdef readonly unsigned long long opened

    def __cinit__(self, int suite, int direction, base_key, kid, int window=0):
        cdef Py_buffer v
        cdef int st = CP_SFRAME_OK
        cdef uint64_t k = _u64(kid, "kid")
        cdef cp_sframe_suite_info info
        _suite_info(suite, &info)
        if direction != CP_SFRAME_ENCRYPT and direction != CP_SFRAME_DECRYPT:
            raise ValueError("direction must be ENCRYPT or DECRYPT")
        if window < 0 or window > CP_SFRAME_MAX_WINDOW:
            raise ValueError(f"replay window must be in 0..{CP_SFRAME_MAX_WINDOW} counters")
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()
        _get(base_key, &v, "base_key")
        try:
            with nogil:
                self._key = cp_sframe_key_new(suite, direction, <const uint8_t *>v.buf,
                                              <size_t>v.len, k, <uint32_t>window, &st)
        finally:
            PyBuffer_Release(&v)
        _check(st)
        self.kid = kid
        self._kid = k
        self.suite = suite
        self.direction = direction
        self._nt = info.nt
        self._next = 0
        self._exhausted = False
        self._reserved = 0
        self._reserved_all = True
        self.opened = 0

    def __dealloc__(self):
        # Safety net only; owners call close().
        if self._key != NULL:
            cp_sframe_key_free(self._key)
            self._key = NULL
        if self._lock != NULL:
            PyThread_free_lock(self._lock)
            self._lock = NULL

    def close(self):
        """Zeroise and free the key material; idempotent."""
        if self._key == NULL:
            return
        with nogil:
            PyThread_acquire_lock(self._lock, WAIT_LOCK)
            cp_sframe_key_free(self._key)
            self._key = NULL
            PyThread_release_lock(self._lock)

    @property
    def closed(self):
        return self._key == NULL

    # -- counter (encrypt keys) --
    @property
    def next_counter(self):
        """The next counter value :meth:`seal_next` uses; 2**64 once exhausted."""
        return (1 << 64) if self._exhausted else self._next

    def set_next_counter(self, value):
        """Set the next counter (0..2**64; 2**64 means exhausted).  No checks against reuse:
        the caller (SFrameSender) only ever moves it forward."""
        if value == (1 << 64):
            self._exhausted = True
            self._next = 0xFFFFFFFFFFFFFFFF
        else:
            self._next = _u64(value, "counter")
            self._exhausted = False

    def reserve(self, limit):
        """Allow counters below ``limit`` (0..2**64) without asking for a reservation."""
        if limit >= (1 << 64):
            self._reserved_all = True
        else:
            self._reserved = _u64(limit, "limit")
            self._reserved_all = False

    def seal_next(self, metadata, plaintext):
        """Seal at the next counter and advance it.

        Returns ``None`` (nothing consumed) when the next counter is not reserved: the caller
        persists and calls :meth:`reserve`.  Raises CryptoError once the counter is exhausted.
        The counter is consumed before any work, even if sealing then fails.
        """
        cdef uint64_t c
        if self._key == NULL:
            raise ClosedError("SFrame key is closed")
        if self._exhausted:
            raise CryptoError(f"SFrame counter of kid {self.kid} is exhausted; use a new KID")
        if not self._reserved_all and self._next >= self._reserved:
            return None
        c = self._next
        if c == 0xFFFFFFFFFFFFFFFF:
            self._exhausted = True
        else:
            self._next = c + 1
        return self._seal(c, metadata, plaintext)

    def seal(self, ctr, metadata, plaintext):
        """The SFrame ciphertext header || AEAD(...) of ``plaintext`` at counter ``ctr``
        (explicit counter: conformance; does not touch :attr:`next_counter`)."""
        cdef uint64_t c = _u64(ctr, "ctr")
        if self._key == NULL:
            raise ClosedError("SFrame key is closed")
        return self._seal(c, metadata, plaintext)

    cdef object _seal(self, uint64_t c, object metadata, object plaintext):
        cdef Py_buffer vm, vp
        cdef int rc
        cdef size_t n = 0, total
        cdef object out
        cdef uint8_t *o
        _get(metadata, &vm, "metadata")
        try:
            _get(plaintext, &vp, "plaintext")
            try:
                total = <size_t>vp.len + self._nt + cp_sframe_header_len(self._kid, c)
                out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>total)
                o = <uint8_t *>PyBytes_AS_STRING(out)
                with nogil:
                    PyThread_acquire_lock(self._lock, WAIT_LOCK)
                    if self._key == NULL:
                        rc = -1
                    else:
                        rc = cp_sframe_key_encrypt(self._key, c, <const uint8_t *>vm.buf,
                                                   <size_t>vm.len, <const uint8_t *>vp.buf,
                                                   <size_t>vp.len, o, total, &n)
                    PyThread_release_lock(self._lock)
            finally:
                PyBuffer_Release(&vp)
        finally:
            PyBuffer_Release(&vm)
        if rc == -1:
            raise ClosedError("SFrame key is closed")
        _check(rc)
        return out

    def open(self, frame, metadata):
        """Authenticate and decrypt one SFrame ciphertext.

        Returns the plaintext (``bytes``), or for a rejected frame one of the ints
        :data:`ERR_AUTH`, :data:`ERR_HEADER`, :data:`ERR_REPLAY`, :data:`ERR_TOO_OLD`,
        :data:`ERR_KID` (no exception on the per-frame rejection path).
        """
        cdef Py_buffer vf, vm
        cdef uint64_t kid = 0, ctr = 0
        cdef size_t hlen = 0
        if self._key == NULL:
            raise ClosedError("SFrame key is closed")
        _get(frame, &vf, "ciphertext")
        try:
            _get(metadata, &vm, "metadata")
            try:
                if cp_sframe_decode_header(<const uint8_t *>vf.buf, <size_t>vf.len, &kid, &ctr,
                                           &hlen) != CP_SFRAME_OK:
                    return CP_SFRAME_ERR_HEADER
                return self._open(&vf, &vm, hlen)
            finally:
                PyBuffer_Release(&vm)
        finally:
            PyBuffer_Release(&vf)

    cdef object _open(self, Py_buffer *vf, Py_buffer *vm, size_t hlen):
        cdef int rc
        cdef uint64_t ctr = 0
        cdef size_t n, outn = 0
        cdef object out
        cdef uint8_t *o
        if <size_t>vf.len - hlen < self._nt:
            return CP_SFRAME_ERR_HEADER
        n = <size_t>vf.len - hlen - self._nt
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>n)
        o = <uint8_t *>PyBytes_AS_STRING(out)
        with nogil:
            PyThread_acquire_lock(self._lock, WAIT_LOCK)
            if self._key == NULL:
                rc = -1
            else:
                rc = cp_sframe_key_decrypt(self._key, <const uint8_t *>vf.buf, <size_t>vf.len,
                                           <const uint8_t *>vm.buf, <size_t>vm.len, o, n, &outn,
                                           &ctr)
            PyThread_release_lock(self._lock)
        if rc == CP_SFRAME_OK:
            self.opened += 1  # under the GIL: no other Python thread interleaves
            return out
        if rc == -1:
            raise ClosedError("SFrame key is closed")
        if (rc == CP_SFRAME_ERR_AUTH or rc == CP_SFRAME_ERR_REPLAY or rc == CP_SFRAME_ERR_TOO_OLD
                or rc == CP_SFRAME_ERR_KID or rc == CP_SFRAME_ERR_HEADER):
            ERR_clear_error()
            return rc
        _check(rc)


def open_with(dict keys, frame, metadata):
    """Pick the key for the frame's KID from ``keys`` (KID -> :class:`Key`) and open the frame.

    Returns the plaintext (``bytes``), or ``(status, kid, ctr)`` for a rejected frame, where
    status is one of the ``ERR_*`` values (:data:`ERR_UNKNOWN_KID` when ``keys`` has no key for
    the KID; kid and ctr are None when the header did not parse).
    """
    cdef Py_buffer vf, vm
    cdef uint64_t kid = 0, ctr = 0
    cdef size_t hlen = 0
    cdef Key key
    _get(frame, &vf, "ciphertext")
    try:
        _get(metadata, &vm, "metadata")
        try:
            if cp_sframe_decode_header(<const uint8_t *>vf.buf, <size_t>vf.len, &kid, &ctr,
                                       &hlen) != CP_SFRAME_OK:
                return (CP_SFRAME_ERR_HEADER, None, None)
            k = keys.get(kid)
            if k is None:
                return (ERR_UNKNOWN_KID, kid, ctr)
            key = <Key?>k
            if key._key == NULL:
                raise ClosedError("SFrame key is closed")
            res = key._open(&vf, &vm, hlen)
            if type(res) is bytes:
                return res
            return (res, kid, ctr)
        finally:
            PyBuffer_Release(&vm)
    finally:
        PyBuffer_Release(&vf)


cdef class Aead:
    """The suite's AEAD with a fixed key and cached EVP contexts: one raw AEAD call per frame
    on the same libcrypto as SFrame (benchmark floor; Appendix C.2 checks).

    :param suite: 1..5. :param direction: ENCRYPT or DECRYPT. :param key: Nk bytes.
    """

    cdef cp_sframe_aead *_aead
    cdef PyThread_type_lock _lock
    cdef size_t _nt
    cdef size_t _nn

    def __cinit__(self, int suite, int direction, key):
        cdef Py_buffer v
        cdef int st = CP_SFRAME_OK
        cdef cp_sframe_suite_info info
        _suite_info(suite, &info)
        self._nt = info.nt
        self._nn = info.nn
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()
        _get(key, &v, "key")
        try:
            if <size_t>v.len != info.nk:
                raise CryptoError(f"key must be {info.nk} bytes")
            with nogil:
                self._aead = cp_sframe_aead_new(suite, direction, <const uint8_t *>v.buf, &st)
        finally:
            PyBuffer_Release(&v)
        _check(st)

    def __dealloc__(self):
        if self._aead != NULL:
            cp_sframe_aead_free(self._aead)
            self._aead = NULL
        if self._lock != NULL:
            PyThread_free_lock(self._lock)
            self._lock = NULL

    def close(self):
        """Free the contexts; idempotent."""
        if self._aead == NULL:
            return
        with nogil:
            PyThread_acquire_lock(self._lock, WAIT_LOCK)
            cp_sframe_aead_free(self._aead)
            self._aead = NULL
            PyThread_release_lock(self._lock)

    def seal(self, nonce, aad, pt):
        """ct || tag."""
        return self._run(True, nonce, aad, pt)

    def open(self, nonce, aad, ct):
        """pt; AuthenticationError if the tag does not verify."""
        return self._run(False, nonce, aad, ct)

    cdef object _run(self, bint seal, object nonce, object aad, object data):
        cdef Py_buffer vn, va, vd
        cdef int rc
        cdef Py_ssize_t n
        cdef object out
        cdef uint8_t *o
        if self._aead == NULL:
            raise ClosedError("AEAD is closed")
        _get(nonce, &vn, "nonce")
        try:
            if <size_t>vn.len != self._nn:
                raise CryptoError(f"nonce must be {self._nn} bytes")
            _get(aad, &va, "aad")
            try:
                _get(data, &vd, "data")
                try:
                    if seal:
                        n = vd.len + <Py_ssize_t>self._nt
                    elif <size_t>vd.len < self._nt:
                        raise CryptoError(f"ciphertext shorter than the {self._nt}-byte tag")
                    else:
                        n = vd.len - <Py_ssize_t>self._nt
                    out = PyBytes_FromStringAndSize(NULL, n)
                    o = <uint8_t *>PyBytes_AS_STRING(out)
                    with nogil:
                        PyThread_acquire_lock(self._lock, WAIT_LOCK)
                        if self._aead == NULL:
                            rc = -1
                        elif seal:
                            rc = cp_sframe_aead_ctx_seal(self._aead, <const uint8_t *>vn.buf,
                                                         <const uint8_t *>va.buf, <size_t>va.len,
                                                         <const uint8_t *>vd.buf, <size_t>vd.len,
                                                         o)
                        else:
                            rc = cp_sframe_aead_ctx_open(self._aead, <const uint8_t *>vn.buf,
                                                         <const uint8_t *>va.buf, <size_t>va.len,
                                                         <const uint8_t *>vd.buf, <size_t>vd.len,
                                                         o)
                        PyThread_release_lock(self._lock)
                finally:
                    PyBuffer_Release(&vd)
            finally:
                PyBuffer_Release(&va)
        finally:
            PyBuffer_Release(&vn)
        if rc == -1:
            raise ClosedError("AEAD is closed")
        _check(rc)
        return out
