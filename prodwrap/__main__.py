"""``python -m prodwrap``: the command line (``report``: summarise an audit log; see ``prodwrap._cli``)."""

import os
import sys

from prodwrap._cli import main

if __name__ == "__main__":
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:  # the reader (head, less) went away: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 0
    sys.exit(status)
