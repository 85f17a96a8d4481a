"""Network traces: per-packet send and arrival times, from CSV or from a pcap of an RTP stream.

A :class:`Trace` holds one row per packet *transmission* (a duplicate is a second row with the
same sequence number; a lost packet has no arrival).

* CSV: header ``seq,send_ms,arrival_ms`` (more columns are ignored), one row per packet; an empty
  ``arrival_ms`` means lost.  Times are ms, any origin.
* pcap / pcapng of an RTP stream (Ethernet, Linux cooked v1/v2, BSD loopback or raw IP links;
  IPv4/IPv6 + UDP): arrival times come from the capture, send times from the RTP timestamps
  (``clock_rate`` Hz).  The sender's clock offset is unknown, so send times are placed so that
  the fastest packet had zero delay: delays are *relative* to the best case.  Sequence gaps
  become lost rows (their timestamps interpolated).  The stream is the SSRC given, else the one
  with the most packets; RTCP is skipped.
"""

from __future__ import annotations

import csv
import math
import os
import struct
from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import CallpipeError

__all__ = ["Trace", "TraceError", "read_csv", "write_csv", "read_pcap", "read_trace"]


class TraceError(CallpipeError, ValueError):
    """A trace file cannot be read."""


@dataclass
class Trace:
    """Packets of one stream with send and arrival times.

    :param seq: sequence numbers (int64; RTP numbers may be unwrapped past 65535).
    :param send_ms: send times, ms.
    :param arrival_ms: arrival times, ms; NaN for a lost packet.
    :param timestamp: RTP timestamps (unwrapped, int64) when the trace has them, else ``None``.
    :param payload_size: payload bytes per packet when known, else ``None``.
    :param name: where it came from.
    """

    seq: npt.NDArray[np.int64]
    send_ms: npt.NDArray[np.float64]
    arrival_ms: npt.NDArray[np.float64]
    timestamp: npt.NDArray[np.int64] | None = None
    payload_size: npt.NDArray[np.int64] | None = None
    name: str = "trace"

    def __post_init__(self) -> None:
        n = len(self.seq)
        if len(self.send_ms) != n or len(self.arrival_ms) != n:
            raise TraceError("seq, send_ms and arrival_ms must have one length")
        for extra in (self.timestamp, self.payload_size):
            if extra is not None and len(extra) != n:
                raise TraceError("timestamp and payload_size must match seq in length")

    def __len__(self) -> int:
        return len(self.seq)

    @property
    def received(self) -> npt.NDArray[np.bool_]:
        """Rows that arrived."""
        return ~np.isnan(self.arrival_ms)

    @property
    def delays_ms(self) -> npt.NDArray[np.float64]:
        """One-way delay (arrival - send) of the rows that arrived, ms."""
        r = self.received
        return self.arrival_ms[r] - self.send_ms[r]

    @property
    def loss_rate(self) -> float:
        """Share of unique sequence numbers that never arrived."""
        uniq = np.unique(self.seq)
        got = np.unique(self.seq[self.received])
        return 1.0 - len(got) / len(uniq) if len(uniq) else 0.0

    @property
    def duration_ms(self) -> float:
        """Send time span, ms."""
        return float(self.send_ms.max() - self.send_ms.min()) if len(self) else 0.0

    def summary(self) -> str:
        """One line: packets, loss, delay statistics."""
        d = self.delays_ms
        if not len(d):
            return f"{self.name}: {len(self)} packets, none arrived"
        return (
            f"{self.name}: {len(self)} packets over {self.duration_ms / 1000:.1f} s, "
            f"loss {100 * self.loss_rate:.2f} %, delay min {d.min():.1f} / median "
            f"{np.median(d):.1f} / p95 {np.percentile(d, 95):.1f} / max {d.max():.1f} ms"
        )


# -- CSV --------------------------------------------------------------------------------------
def read_csv(path: str | os.PathLike[str]) -> Trace:
    """Read a ``seq,send_ms,arrival_ms`` CSV trace (empty arrival = lost).

    :raises TraceError: naming the file and line of the first problem.
    """
    seqs: list[int] = []
    sends: list[float] = []
    arrivals: list[float] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise TraceError(f"{path}: empty file (expected the header seq,send_ms,arrival_ms)")
            cols = [h.strip().lower() for h in header]
            try:
                i_seq, i_send, i_arr = (cols.index(c) for c in ("seq", "send_ms", "arrival_ms"))
            except ValueError:
                raise TraceError(
                    f"{path}: the header must name seq,send_ms,arrival_ms, got {header!r}"
                ) from None
            for line_no, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                try:
                    seq = int(row[i_seq])
                    send = float(row[i_send])
                    text = row[i_arr].strip() if i_arr < len(row) else ""
                    arr = float(text) if text else math.nan
                except (ValueError, IndexError):
                    raise TraceError(f"{path}:{line_no}: cannot read {row!r}") from None
                if not math.isfinite(send) or (text and not math.isfinite(arr)):
                    raise TraceError(f"{path}:{line_no}: times must be finite numbers")
                seqs.append(seq)
                sends.append(send)
                arrivals.append(arr)
    except OSError as e:
        raise TraceError(f"cannot read {path}: {e}") from None
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not a text CSV file") from None
    if not seqs:
        raise TraceError(f"{path}: no packets")
    return Trace(
        np.array(seqs, np.int64), np.array(sends, np.float64), np.array(arrivals, np.float64),
        name=os.path.basename(str(path)),
    )


def write_csv(trace: Trace, path: str | os.PathLike[str]) -> None:
    """Write ``seq,send_ms,arrival_ms`` (lost rows with an empty arrival)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["seq", "send_ms", "arrival_ms"])
        for s, t, a in zip(trace.seq.tolist(), trace.send_ms.tolist(), trace.arrival_ms.tolist(),
                           strict=True):
            w.writerow([s, repr(t), "" if math.isnan(a) else repr(a)])  # exact round trip


# -- pcap / pcapng ----------------------------------------------------------------------------
_LINK_ETHERNET, _LINK_NULL, _LINK_RAW, _LINK_SLL, _LINK_SLL2 = 1, 0, 101, 113, 276
_LINK_LOOP, _LINK_IPV4, _LINK_IPV6, _LINK_RAW_OLD = 108, 228, 229, 12


def _ip_payload(link: int, data: bytes) -> bytes | None:
    """The IP packet inside a link-layer frame (None when not IP)."""
    if link == _LINK_ETHERNET:
        off, etype = 14, int.from_bytes(data[12:14], "big") if len(data) >= 14 else 0
        while etype in (0x8100, 0x88A8) and len(data) >= off + 4:  # VLAN tags
            etype = int.from_bytes(data[off + 2 : off + 4], "big")
            off += 4
        return data[off:] if etype in (0x0800, 0x86DD) else None
    if link in (_LINK_NULL, _LINK_LOOP):
        return data[4:] if len(data) > 4 else None
    if link in (_LINK_RAW, _LINK_RAW_OLD, _LINK_IPV4, _LINK_IPV6):
        return data
    if link == _LINK_SLL:
        if len(data) < 16 or int.from_bytes(data[14:16], "big") not in (0x0800, 0x86DD):
            return None
        return data[16:]
    if link == _LINK_SLL2:
        if len(data) < 20 or int.from_bytes(data[0:2], "big") not in (0x0800, 0x86DD):
            return None
        return data[20:]
    return None


def _udp_payload(ip: bytes) -> bytes | None:
    if len(ip) < 20:
        return None
    version = ip[0] >> 4
    if version == 4:
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17 or ihl < 20 or len(ip) < ihl + 8:
            return None
        if int.from_bytes(ip[6:8], "big") & 0x3FFF:  # a fragment: skip
            return None
        udp = ip[ihl:]
    elif version == 6:
        if len(ip) < 48 or ip[6] != 17:
            return None
        udp = ip[40:]
    else:
        return None
    length = int.from_bytes(udp[4:6], "big")
    return udp[8:length] if 8 <= length <= len(udp) else udp[8:]


def _frames(data: bytes, path: str) -> list[tuple[float, int, bytes]]:
    """(capture time in ms, link type, frame) for every packet of a pcap or pcapng file."""
    if len(data) < 24:
        raise TraceError(f"{path}: too short for a pcap file")
    magic = data[:4]
    out: list[tuple[float, int, bytes]] = []
    classic = {
        b"\xd4\xc3\xb2\xa1": ("<", 1e-3), b"\xa1\xb2\xc3\xd4": (">", 1e-3),
        b"\x4d\x3c\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\x3c\x4d": (">", 1e-6),
    }
    if magic in classic:
        end, frac_ms = classic[magic]
        link = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
        off = 24
        while off + 16 <= len(data):
            sec, frac, incl, _orig = struct.unpack(end + "IIII", data[off : off + 16])
            off += 16
            if incl > len(data) - off:
                break  # truncated capture: keep what was read
            out.append((sec * 1000.0 + frac * frac_ms, link, data[off : off + incl]))
            off += incl
        return out
    if magic != b"\x0a\x0d\x0d\x0a":
        raise TraceError(f"{path}: not a pcap or pcapng file (magic {magic.hex()})")
    end = "<"
    links: list[tuple[int, float]] = []  # per interface: link type, ms per timestamp unit
    off = 0
    while off + 12 <= len(data):
        if data[off : off + 4] == b"\x0a\x0d\x0d\x0a":  # section header: byte order
            bom = data[off + 8 : off + 12]
            end = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        btype, blen = struct.unpack(end + "II", data[off : off + 8])
        if blen < 12 or off + blen > len(data):
            break
        body = data[off + 8 : off + blen - 4]
        if btype == 1 and len(body) >= 8:  # interface description
            link = struct.unpack(end + "H", body[0:2])[0]
            unit_ms = 1e-3  # default microseconds
            o = 8
            while o + 4 <= len(body):
                code, olen = struct.unpack(end + "HH", body[o : o + 4])
                if code == 0:
                    break
                if code == 9 and olen >= 1:  # if_tsresol
                    r = body[o + 4]
                    unit_ms = (2.0 ** -(r & 0x7F) if r & 0x80 else 10.0 ** -(r & 0x7F)) * 1000.0
                o += 4 + (olen + 3) // 4 * 4
            links.append((link, unit_ms))
        elif btype == 6 and len(body) >= 20:  # enhanced packet
            iface, hi, lo, caplen, _orig = struct.unpack(end + "IIIII", body[0:20])
            if iface < len(links) and caplen <= len(body) - 20:
                link, unit_ms = links[iface]
                out.append((((hi << 32) | lo) * unit_ms, link, body[20 : 20 + caplen]))
        off += blen
    return out


def _unwrap(values: list[int], bits: int) -> list[int]:
    mod, half = 1 << bits, 1 << (bits - 1)
    out: list[int] = []
    last: int | None = None
    for v in values:
        if last is None:
            u = v
        else:
            u = (last & ~(mod - 1)) + v
            if u - last > half:
                u -= mod
            elif last - u > half:
                u += mod
        out.append(u)
        last = u if last is None or u > last else last
    return out


def read_pcap(
    path: str | os.PathLike[str], ssrc: int | None = None, clock_rate: int = 48000,
    payload_type: int | None = None,
) -> Trace:
    """Read the RTP stream of a pcap/pcapng capture as a :class:`Trace`.

    :param path: the capture file.
    :param ssrc: the stream's SSRC; default the SSRC with the most packets.
    :param clock_rate: the RTP clock, Hz (48000 for Opus, 90000 for video).
    :param payload_type: keep only this RTP payload type (0..127).
    :raises TraceError: when the file is unreadable or holds no RTP packets.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TraceError(f"cannot read {path}: {e}") from None
    if not isinstance(clock_rate, int) or clock_rate <= 0:
        raise TraceError(f"clock_rate must be a positive number of Hz, got {clock_rate!r}")
    rtp: list[tuple[float, int, int, int, int]] = []  # time, ssrc, seq, ts, payload size
    for t, link, frame in _frames(data, str(path)):
        ip = _ip_payload(link, frame)
        udp = _udp_payload(ip) if ip is not None else None
        if udp is None or len(udp) < 12 or udp[0] >> 6 != 2:
            continue
        pt = udp[1] & 0x7F
        if 72 <= pt <= 76:  # RTCP (packet types 200..204)
            continue
        if payload_type is not None and pt != payload_type:
            continue
        cc = udp[0] & 0x0F
        hdr = 12 + 4 * cc
        if udp[0] & 0x10 and len(udp) >= hdr + 4:  # header extension
            hdr += 4 + 4 * int.from_bytes(udp[hdr + 2 : hdr + 4], "big")
        size = len(udp) - hdr
        if udp[0] & 0x20 and size > 0:  # padding
            size -= udp[-1]
        if size < 0:
            continue
        seq = int.from_bytes(udp[2:4], "big")
        ts = int.from_bytes(udp[4:8], "big")
        rtp.append((t, int.from_bytes(udp[8:12], "big"), seq, ts, size))
    if not rtp:
        raise TraceError(f"{path}: no RTP packets found")
    if ssrc is None:
        ssrc = Counter(r[1] for r in rtp).most_common(1)[0][0]
    pkts = [r for r in rtp if r[1] == ssrc]
    if not pkts:
        raise TraceError(f"{path}: no RTP packets with SSRC {ssrc:#010x}")
    t0 = pkts[0][0]
    arrivals = [p[0] - t0 for p in pkts]
    seqs = _unwrap([p[2] for p in pkts], 16)
    tss = _unwrap([p[3] for p in pkts], 32)
    sizes = [p[4] for p in pkts]
    # lost packets: sequence numbers never seen, timestamps interpolated between neighbours
    seen = dict(zip(seqs, tss, strict=True))
    lo, hi = min(seqs), max(seqs)
    known = sorted(seen)
    rows_seq, rows_ts, rows_arr, rows_size = list(seqs), list(tss), list(arrivals), list(sizes)
    k = 0
    for s in range(lo, hi + 1):
        while k + 1 < len(known) and known[k + 1] <= s:
            k += 1
        if s in seen:
            continue
        a, b = known[k], known[k + 1]
        ts_guess = seen[a] + (seen[b] - seen[a]) * (s - a) // (b - a)
        rows_seq.append(s)
        rows_ts.append(ts_guess)
        rows_arr.append(math.nan)
        rows_size.append(0)
    seq_arr = np.array(rows_seq, np.int64)
    ts_arr = np.array(rows_ts, np.int64)
    arr_arr = np.array(rows_arr, np.float64)
    size_arr = np.array(rows_size, np.int64)
    order = np.lexsort((np.nan_to_num(arr_arr, nan=np.inf), seq_arr))
    seq_arr, ts_arr, size_arr = seq_arr[order], ts_arr[order], size_arr[order]
    arr_arr = arr_arr[order]
    send = (ts_arr - ts_arr.min()) * 1000.0 / clock_rate
    got = ~np.isnan(arr_arr)
    send += np.nanmin(arr_arr[got] - send[got])  # fastest packet: zero delay
    return Trace(seq_arr, send, arr_arr, ts_arr, size_arr, name=os.path.basename(str(path)))


def read_trace(path: str | os.PathLike[str], **pcap_options: int | None) -> Trace:
    """A CSV or pcap/pcapng trace, by content (pcap magic numbers) rather than by name."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise TraceError(f"cannot read {path}: {e}") from None
    if head in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
                b"\x0a\x0d\x0d\x0a"):
        return read_pcap(path, **pcap_options)  # type: ignore[arg-type]
    return read_csv(path)
