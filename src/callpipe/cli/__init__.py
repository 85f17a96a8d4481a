"""The ``callpipe`` command line (``callpipe --help``)."""
