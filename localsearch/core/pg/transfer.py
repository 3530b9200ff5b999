"""Moving an index between backends without re-embedding: this computer's SQLite file into
a shared PostgreSQL index, or this machine's folders of a shared index back into a file.
Folders, files (with their content hashes, so unchanged files stay unchanged), failures
with their reasons, chunks and their stored vectors are copied, one file a transaction,
through the storage protocol alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from localsearch.core.store_protocol import IndexStore
from localsearch.errors import StorageError


@dataclass
class TransferReport:
    folders: int = 0
    files: int = 0
    failed: int = 0
    chunks: int = 0
    skipped: int = 0  # files of another model or dimensions than the space copied

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def transfer(
    source: IndexStore,
    target: IndexStore,
    model: str,
    dimensions: int = 0,
    *,
    report: Callable[[TransferReport], None] = lambda r: None,
) -> TransferReport:
    """Copy the source's folders and the files of one space (the model the settings name)
    into the target; files already in the target are replaced by the source's."""
    space = source.find_space(model, dimensions)
    if space is None:
        raise StorageError(f"The index holds no vectors of {model}: nothing to copy.")
    copied = target.ensure_space(space.model, space.dimensions, space.precision)
    done = TransferReport()
    for folder_id, folder in source.folders():
        target_folder = target.add_folder(folder)
        done.folders += 1
        for path, state in sorted(source.file_states(folder_id).items()):
            if state.status == "failed":
                target.record_failure(
                    folder_id=target_folder,
                    path=path,
                    size=state.size,
                    mtime=state.mtime,
                    content_hash=state.content_hash,
                    reason=state.reason or "",
                )
                done.failed += 1
                continue
            if state.space_id != space.id or state.content_hash is None:
                done.skipped += 1
                continue
            chunks, vectors = source.file_chunks(state.id, space)
            target.replace_file(
                folder_id=target_folder,
                path=path,
                size=state.size,
                mtime=state.mtime,
                content_hash=state.content_hash,
                space=copied,
                chunks=chunks,
                vectors=vectors,
            )
            done.files += 1
            done.chunks += len(chunks)
            if done.files % 200 == 0:
                report(done)
    report(done)
    return done
