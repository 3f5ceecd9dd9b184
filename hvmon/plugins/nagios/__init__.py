"""``check_hvmon``: a Nagios/Icinga plugin built on nagiosplugin (see docs/nagios.md).

Nothing is imported here: the command must start fast, so every module loads
only what its mode needs.
"""
