"""The one exception a `tollgate` command raises for a usage problem: printed, exit code 2."""


class CommandError(Exception):
    pass
