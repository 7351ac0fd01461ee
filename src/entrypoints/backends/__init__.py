"""The storage backends: each a container that provides every storage port as one unit."""

from entrypoints.backends.memory import MemoryBackend
from entrypoints.backends.postgres import PostgresBackend

__all__ = ["MemoryBackend", "PostgresBackend"]
