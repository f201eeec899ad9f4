"""The BlobStore port on Amazon S3 (or MinIO / moto via RAG_AWS__ENDPOINT_URL).

Reads are size-limited twice: HeadObject's ContentLength refuses an oversize
object before any byte is downloaded, and the streamed read stops at
``max_bytes`` in case the object was replaced in between.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.aws.client import LazyAwsClient, error_code, http_status
from shared.errors import DocumentError, DocumentTooLarge, TransientError
from shared.settings import Settings

_READ_CHUNK = 256 * 1024
_MISSING = {"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404", "NotFound"}
_FORBIDDEN = {"AccessDenied", "403", "Forbidden"}


def _describe(bucket: str, key: str, version_id: str | None) -> str:
    return f"s3://{bucket}/{key}" + (f"?versionId={version_id}" if version_id else "")


def map_client_error(exc: ClientError, where: str) -> Exception:
    code, status = error_code(exc), http_status(exc)
    if code in _MISSING or status == 404:
        return DocumentError(f"{where} does not exist")
    if code in _FORBIDDEN or status == 403:
        # Retrying won't grant access: the message is unusable as sent.
        return DocumentError(f"the indexer is not allowed to read {where}")
    return TransientError(f"S3 failed to read {where}: {exc}")


def too_large(where: str, size: int | None, max_bytes: int) -> DocumentTooLarge:
    shown = f"{size} bytes" if size is not None else f"more than {max_bytes} bytes"
    return DocumentTooLarge(f"{where} is {shown}; the limit is {max_bytes} bytes")


class S3BlobStore:
    def __init__(self, settings: Settings) -> None:
        self._client = LazyAwsClient.from_settings("s3", settings)

    async def get(self, bucket: str, key: str, version_id: str | None, max_bytes: int) -> bytes:
        where = _describe(bucket, key, version_id)
        target: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            target["VersionId"] = version_id
        try:
            client = await self._client()
            head = await client.head_object(**target)
            size = int(head.get("ContentLength", 0))
            if size > max_bytes:
                raise too_large(where, size, max_bytes)
            response = await client.get_object(**target)
            return await self._read_capped(response["Body"], where, max_bytes)
        except ClientError as exc:
            raise map_client_error(exc, where) from exc
        except (BotoCoreError, OSError) as exc:
            raise TransientError(f"S3 unreachable while reading {where}: {exc}") from exc

    @staticmethod
    async def _read_capped(body: Any, where: str, max_bytes: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        async with body as stream:
            while True:
                part = await stream.read(_READ_CHUNK)
                if not part:
                    return b"".join(parts)
                total += len(part)
                if total > max_bytes:
                    raise too_large(where, None, max_bytes)
                parts.append(part)

    async def close(self) -> None:
        await self._client.close()


def from_settings(settings: Settings) -> S3BlobStore:
    return S3BlobStore(settings)
