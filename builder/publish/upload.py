"""The writes of a publish: the plan's uploads batch by batch, and the pruning of old keys.

Each batch (`plan.order_batches`: artifacts, documents, listings, pointers, TUF
metadata with the timestamp last) is complete before the next starts; within a
batch, chunks go up in parallel, the lease checked before each chunk, so a
publisher that lost its lease stops within one chunk rather than overwrite what
the new holder wrote.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from builder.common.layout import cache_control, content_type
from builder.publish.lease import Lease
from builder.publish.plan import Upload, order_batches
from builder.publish.storage import Storage

_PARALLEL_UPLOADS = 16
# A batch is sent in chunks of at most this many uploads or bytes, the lease checked
# before each: a publisher that lost its lease stops within one chunk.
_CHUNK_UPLOADS = 256
_CHUNK_BYTES = 256 << 20
_PRUNE_BATCH = 1000  # keys deleted between two looks at the lease (one S3 request)

OnUpload = Callable[[str, int], None]


def upload_in_order(
    store: Storage,
    uploads: Sequence[Upload],
    live: Mapping[str, str],
    lease: Lease,
    on_upload: OnUpload | None,
) -> int:
    """Upload the plan batch by batch, chunk by chunk; return the bytes uploaded."""
    sent = 0
    for batch in order_batches(uploads, live):
        for chunk in _chunks(batch):
            # A publisher whose lease was taken over stops here rather than
            # overwrite what the new holder wrote.
            lease.check()
            _upload_batch(store, chunk, lease, on_upload)
            sent += sum(u.size for u in chunk)
    return sent


def prune(store: Storage, keys: list[str], lease: Lease) -> None:
    """Delete the keys retired longer than the grace period."""
    if not keys:
        return
    # Deleted before the record forgets them: a publish stopped here leaves them
    # still listed as retired, so the next prune deletes them again. Renewed
    # first: a new holder may have uploaded again a key this one would delete.
    lease.renew()
    for start in range(0, len(keys), _PRUNE_BATCH):
        store.delete_many(keys[start : start + _PRUNE_BATCH])
        lease.renew_if_due()


def _chunks(batch: list[Upload]) -> Iterator[list[Upload]]:
    """Split a batch into chunks of at most _CHUNK_UPLOADS uploads and _CHUNK_BYTES."""
    chunk: list[Upload] = []
    size = 0
    for upload in batch:
        if chunk and (len(chunk) >= _CHUNK_UPLOADS or size + upload.size > _CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(upload)
        size += upload.size
    if chunk:
        yield chunk


def _upload_batch(
    store: Storage,
    batch: list[Upload],
    lease: Lease,
    on_upload: OnUpload | None,
) -> None:
    """Upload a chunk in parallel; after a failure or Ctrl-C, start none of the rest."""
    stop = threading.Event()

    def send(upload: Upload) -> None:
        if stop.is_set():
            return  # an upload failed or the lease is lost: start no more
        try:
            store.put(
                upload.key,
                upload.source,
                content_type=content_type(upload.key),
                cache_control=cache_control(upload.key),
                sha256=upload.sha256,  # kept with the object: what a later check compares
            )
            if on_upload is not None:
                on_upload(upload.key, upload.size)
            lease.renew_if_due()
        except BaseException:
            stop.set()
            raise

    if len(batch) == 1:
        send(batch[0])
        return
    with ThreadPoolExecutor(_PARALLEL_UPLOADS) as pool:
        try:
            # list(): re-raise the first failure here, after the running uploads end.
            list(pool.map(send, batch))
        except BaseException:
            stop.set()  # Ctrl-C too: the queued uploads are not started
            raise
