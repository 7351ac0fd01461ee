"""The installed package's version, for /v1/info and the OpenAPI document."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("kb-service")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0+source"
