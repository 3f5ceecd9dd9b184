"""``python -m hvmon.cli``: the same as the ``hvmon`` console script."""

import sys

if __name__ == "__main__":
    try:
        from hvmon.cli.main import run
    except KeyboardInterrupt:  # Ctrl-C while still importing: quiet, like virsh
        sys.exit(130)
    run()
