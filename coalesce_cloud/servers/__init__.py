"""The cloud's real servers (ejabberd, coturn, PostgreSQL) run as managed child processes.

Used by ``coalesce-cloud up`` (everything on one machine, for development) and by the test suite. Each
server is configured from a dataclass, keeps all of its state under one directory, binds to 127.0.0.1
unless told otherwise, and is stopped by PID with nothing left running. See :mod:`.errors` for the
exception tree.
"""
