"""Object storage: reports, ticket photos, and (the recording issue) older recordings and
evidence exports. One interface, ``ObjectStore``, over a local folder (one process, or a folder
every node mounts) and S3-compatible storage (a cluster: any node writes, any node serves)."""

from xueliang.objects.store import ObjectInfo, ObjectStore, check_key

__all__ = ["ObjectInfo", "ObjectStore", "check_key"]
