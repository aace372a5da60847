from tests.api.conftest import admin, client, platform

__all__ = ["admin", "client", "platform"]
