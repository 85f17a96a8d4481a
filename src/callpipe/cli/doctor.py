"""``callpipe doctor``: what callpipe runs on, asked from the loaded libraries themselves."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import shutil
import subprocess
import sys
from typing import Any

from .._version import __version__

#: compiled modules and what they are for
NATIVE_MODULES = {
    "callpipe.codecs._vpx": "VP8 over libvpx (cffi)",
    "callpipe.codecs._opus": "Opus over libopus (cffi)",
    "callpipe._openssl": "libcrypto facts (cffi)",
    "callpipe.media._convert": "colour conversion and scaling (Cython + C)",
    "callpipe.e2ee._sframe": "SFrame, RFC 9605, over libcrypto (Cython + C)",
    "callpipe.media._compose": "grid / picture-in-picture compositor (Cython + C)",
    "callpipe.rtp._rtp": "RTP packets, VP8/Opus payload formats (Cython + C)",
    "callpipe.rtp._rtcp": "RTCP packets and NACK (Cython + C)",
    "callpipe.jitter._jitter": "NetEq-style audio jitter buffer (Cython + C)",
    "callpipe.sfu._forward": "SFU forwarding fast path, recvmmsg/sendmmsg (Cython + C)",
}
#: CPU flags (as /proc/cpuinfo names them) that callpipe's native code or its libraries use
CPU_FEATURES = {"sse4_1": "SSE4.1", "avx2": "AVX2", "aes": "AES-NI", "avx512f": "AVX-512F"}
REFERENCE_TOOLS = ("ffmpeg", "ffprobe", "vpxenc", "vpxdec", "opusenc", "opusdec")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "doctor",
        help="show versions of callpipe, Python and the loaded native libraries; check the build",
        description="Print callpipe's version, Python, the runtime versions of libvpx, libopus and "
        "OpenSSL (asked from the loaded libraries), CPU features and whether every native "
        "module loads. Exits 1 if a native module does not load.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)
    return p


def cpu_features() -> dict[str, bool]:
    """CPU features that matter to callpipe, from /proc/cpuinfo (all False where unreadable)."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {label: name in flags for name, label in CPU_FEATURES.items()}


def _module_status() -> dict[str, str]:
    status = {}
    for name in NATIVE_MODULES:
        try:
            importlib.import_module(name)
            status[name] = "ok"
        except Exception as e:  # report every failure, whatever it is
            status[name] = f"FAILED: {type(e).__name__}: {e}"
    return status


def _safe(fn: Any) -> str:
    try:
        return str(fn())
    except Exception as e:  # a library that does not load is reported, not raised
        return f"unavailable ({type(e).__name__}: {e})"


def _libvpx() -> str:
    from ..codecs.vp8 import libvpx_version

    return libvpx_version()


def _libopus() -> str:
    from ..codecs.opus import libopus_version

    return libopus_version()


def _openssl() -> str:
    from .._openssl import ffi, lib

    return str(ffi.string(lib.OpenSSL_version(lib.OPENSSL_VERSION)).decode())


def _pyav() -> str:
    import av

    ffmpeg = ".".join(str(x) for x in av.library_versions.get("libavcodec", ()))
    return f"{av.__version__} (libavcodec {ffmpeg})"


def _tool_version(tool: str) -> str:
    """Path and version line of a reference tool, or ``not found``."""
    path = shutil.which(tool)
    if not path:
        return "not found"
    flag, pattern = {"ff": ("-version", "version"), "vp": ("--help", "WebM Project VP8")}.get(
        tool[:2], ("-V", "opus-tools")
    )
    try:
        out = subprocess.run([path, flag], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{path} (version unknown: {e})"
    lines = (out.stdout + out.stderr).splitlines()
    first = next((ln.strip() for ln in lines if pattern in ln), "version unknown")
    first = first.split(" Copyright")[0].removeprefix("vp8    - ")
    return f"{path}  {first}"


def collect() -> dict[str, Any]:
    """Everything ``callpipe doctor`` reports, as a JSON-ready dict."""
    modules = _module_status()
    return {
        "callpipe": __version__,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "libraries": {
            "libvpx": _safe(_libvpx),
            "libopus": _safe(_libopus),
            "openssl": _safe(_openssl),
            "pyav": _safe(_pyav),
        },
        "cpu": cpu_features(),
        "native_modules": modules,
        "tools": {t: _tool_version(t) for t in REFERENCE_TOOLS},
        "ok": all(v == "ok" for v in modules.values()),
    }


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0 if info["ok"] else 1
    out = sys.stdout.write
    out(f"callpipe {info['callpipe']}\n")
    out(f"  python    {info['python']} on {info['platform']}\n")
    out("runtime libraries (as loaded)\n")
    for k, v in info["libraries"].items():
        out(f"  {k:9} {v}\n")
    out(
        "cpu features\n  "
        + "  ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["cpu"].items())
    )
    out("\nnative modules\n")
    for k, v in info["native_modules"].items():
        out(f"  {k:26} {v:4}  {NATIVE_MODULES[k]}\n")
    out("reference tools (interop tests and benchmarks)\n")
    for k, v in info["tools"].items():
        out(f"  {k:9} {v}\n")
    out(
        "all native modules load\n"
        if info["ok"]
        else "SOME NATIVE MODULES DO NOT LOAD: run `make build`\n"
    )
    return 0 if info["ok"] else 1
