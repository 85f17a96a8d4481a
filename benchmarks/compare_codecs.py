"""Codec comparison against vpxenc/vpxdec and PyAV: the same as ``callpipe bench codecs``.

Usage: ``python benchmarks/compare_codecs.py [--quick] [--markdown FILE] ...``
"""

import sys

from callpipe.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "codecs", *sys.argv[1:]]))
