"""A real `callpipe sfu` process for tests: start it on 127.0.0.1, read its banner, stop it.

Shared by the test modules that need a server process (signaling, media plane, calls, CLI).
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

_BANNER = re.compile(
    r"(?P<url>wss?://127\.0\.0\.1:\d+)(?: \(media on udp://127\.0\.0\.1:(?P<media>\d+)\))?"
)


class SfuProcess:
    """``python -m callpipe.cli.main sfu --host 127.0.0.1 --port PORT [--media-port M] ARGS``.

    :param args: more command-line options.
    :param secret: the join-token secret, handed over in ``CALLPIPE_SECRET``.
    :param port: the signaling port (0: a free one).
    :param media_port: the media UDP port (None: the server's choice).
    :param stderr_path: write the server's stderr to this file (else it is piped).
    :param timeout_s: how long to wait for the banner, s.
    """

    def __init__(
        self,
        *args: str,
        secret: str,
        port: int = 0,
        media_port: int | None = None,
        stderr_path: Path | None = None,
        timeout_s: float = 20.0,
    ) -> None:
        cmd = [sys.executable, "-m", "callpipe.cli.main", "sfu", "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
        if media_port is not None:
            cmd += ["--media-port", str(media_port)]
        cmd += list(args)
        self._log: IO[str] | None = open(stderr_path, "w") if stderr_path else None  # noqa: SIM115
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, text=True,
            stderr=self._log if self._log is not None else subprocess.PIPE,
            env={**os.environ, "CALLPIPE_SECRET": secret},
        )  # fmt: skip
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        self.banner = self.proc.stdout.readline() if ready else ""
        m = _BANNER.search(self.banner)
        if m is None:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"sfu did not start: {self.banner!r} {err or self.stderr()!r}")
        self.url = m.group("url")
        self.port = int(self.url.rsplit(":", 1)[1])
        self.media_port = int(m.group("media")) if m.group("media") else None
        self.terminated = False

    def stderr(self) -> str:
        """What the server wrote to stderr so far (with ``stderr_path``)."""
        return self.stderr_path.read_text() if self.stderr_path else ""

    def terminate(self) -> None:
        """SIGTERM, once."""
        if not self.terminated and self.proc.poll() is None:
            self.terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: no goodbye to anyone (a crash)."""
        self.proc.kill()
        self.proc.communicate(timeout=10)

    def stop(self, timeout_s: float = 15.0) -> tuple[int, str]:
        """SIGTERM and wait; the exit code and stderr.

        :raises AssertionError: it did not stop within ``timeout_s`` (it is killed).
        """
        self.terminate()
        try:
            _, err = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"sfu did not stop on SIGTERM: {err}") from None
        finally:
            if self._log is not None:
                self._log.close()
        return self.proc.returncode, err if err is not None else self.stderr()
