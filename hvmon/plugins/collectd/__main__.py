"""``python -m hvmon.plugins.collectd [-c URI] collectd-exec [...]``.

The ``hvmon`` command with this plugin's commands, for hosts where the Exec
plugin's user cannot run the installed ``hvmon`` script (docs/collectd.md).
"""

from __future__ import annotations

import sys


def main() -> int:
    from hvmon.cli.main import collect_commands
    from hvmon.cli.main import main as hvmon_main
    from hvmon.plugins.collectd.exec import commands

    return hvmon_main(commands=collect_commands([commands()]))


if __name__ == "__main__":
    sys.exit(main())
