"""The hub kernel: app factory, settings, database, auth, tenancy, events, sockets, tasks, i18n."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hub")  # pyproject.toml's, for both API documents
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.0.0"
