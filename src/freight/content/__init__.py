"""freight.content: the content store (blobs by digest); see `store` for the layout."""

from freight.content.store import BlobInfo, ContentStore, ContentWriter

__all__ = ["BlobInfo", "ContentStore", "ContentWriter"]
