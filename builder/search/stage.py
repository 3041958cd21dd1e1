"""The search stage of a build: search/whoosh/ for the CLI, search/v1/ for the browser.

Both are kept incrementally under the build's state folder: the Whoosh index itself
(`.plugindex/search/whoosh/`, updated with only the plugins whose documents changed)
and `state.json` (which documents it holds, the hashes of its files, the shard keys).
Published Whoosh files are immutable and content-addressed
(`search/whoosh/<sha256>.toc|.seg`); `search/whoosh/manifest.json` lists each with
the Whoosh file name it must be given, its sha256 and size, so a client downloads
only files it lacks and verifies each before Whoosh opens it.

A cold build (or any doubt about the state) starts the index from nothing, in name
order, so the same input gives the same bytes. An incremental build adds one small
segment and a new table of contents; segments are compacted by
`whoosh_adapter.Compaction` (more than 8: the small ones are merged; more than a
fifth of documents deleted: everything is merged).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder import __version__
from builder.common import whoosh_adapter as engine
from builder.common.files import sha256_of_file, write_atomic
from builder.index.output import Planned
from builder.index.stages import BuildView
from builder.search import shards as browser
from builder.search.records import RECORD_FORMAT, record_of

log = logging.getLogger(__name__)

WHOOSH_ROOT = "search/whoosh/"
WHOOSH_MANIFEST = WHOOSH_ROOT + "manifest.json"
MANIFEST_FORMAT = 1
_STATE_FORMAT = 2  # 2: yanked_only became a sortable column


def whoosh_path(name: str, sha256: str) -> str:
    """Return the published, content-addressed path of a Whoosh file."""
    return f"{WHOOSH_ROOT}{sha256}.{name.rsplit('.', 1)[1]}"


def _encode(document: dict[str, Any]) -> bytes:
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def _planned(content: bytes) -> Planned:
    return Planned(hashlib.sha256(content).hexdigest(), len(content), content)


@dataclass
class _State:
    """What the previous build left in the state folder."""

    fingerprint: str = ""
    generation: int = -1
    plugins: dict[str, str] = field(default_factory=dict)  # name -> document sha256
    whoosh: dict[str, list[Any]] = field(default_factory=dict)  # file -> [sha256, size]
    engines: list[str] = field(default_factory=list)
    shards: dict[str, list[Any]] = field(default_factory=dict)  # key -> [path, sha256, size]


class SearchStage:
    """Adds the search index and the browser shards to a build."""

    name = "search"

    def __init__(self, limits: browser.ShardLimits | None = None) -> None:
        self.limits = limits or browser.ShardLimits()
        self._next: _State | None = None
        self.report: dict[str, Any] = {}  # what the last plan did (for -v and benchmarks)

    # --- state ---------------------------------------------------------------------

    def _folder(self, view: BuildView) -> Path:
        return view.state_dir / "search"

    def _fingerprint(self, view: BuildView) -> str:
        settings = [
            __version__,
            _STATE_FORMAT,
            RECORD_FORMAT,
            browser.SHARD_FORMAT,
            [c.slug for c in view.registry.categories],
            [self.limits.max_gzip, self.limits.top, self.limits.more, self.limits.max_depth],
        ]
        return hashlib.sha256(json.dumps(settings).encode()).hexdigest()

    def _load(self, view: BuildView) -> _State | None:
        try:
            data = json.loads((self._folder(view) / "state.json").read_text(encoding="utf-8"))
            state = _State(**data)
        except (OSError, ValueError, TypeError):
            return None
        index = self._folder(view) / "whoosh"
        if state.fingerprint != self._fingerprint(view) or engine.generation(index) != (
            state.generation
        ):
            return None
        return state

    # --- the stage -----------------------------------------------------------------

    def plan(self, view: BuildView) -> dict[str, Planned]:
        """Update the search index and shards; return every file of search/."""
        previous = self._load(view)
        index = self._folder(view) / "whoosh"
        current = {name: facts.doc_sha256 for name, facts in view.facts.items()}
        state = _State(fingerprint=self._fingerprint(view), plugins=current)
        categories = [c.slug for c in view.registry.categories]
        if previous is None:
            shutil.rmtree(index, ignore_errors=True)
            records = [record_of(f, view.document(n)) for n, f in sorted(view.facts.items())]
            state.engines = sorted({v["engine"] for r in records for v in r["versions"]})
            engine.update_index(index, records, [], fresh=True)
            rebuild: set[str] | None = None
            changed: list[str] = sorted(current)
        else:
            changed = sorted(n for n, sha in current.items() if previous.plugins.get(n) != sha)
            removed = sorted(set(previous.plugins) - set(current))
            records = [record_of(view.facts[n], view.document(n)) for n in changed]
            state.engines = list(previous.engines)
            for new_engine in sorted({v["engine"] for r in records for v in r["versions"]}):
                if new_engine not in state.engines:  # appended: old shards keep their numbers
                    state.engines.append(new_engine)
            words: set[str] = set()
            if changed or removed:
                with engine.open_reader(index) as reader:
                    for old in engine.stored_by_name(reader, [*changed, *removed]).values():
                        words |= engine.record_words(old)
                engine.update_index(index, records, removed)
            for record in records:
                words |= engine.record_words(record)
            rebuild = browser.affected_keys(previous.shards, words) | browser.missing_roots(
                previous.shards, words
            )
        state.generation = engine.generation(index)
        plan: dict[str, Planned] = {}
        plan.update(self._whoosh_files(view, index, previous, state))
        plan.update(
            self._shards(
                view,
                index=index,
                previous=previous,
                state=state,
                rebuild=rebuild,
                categories=categories,
            )
        )
        self._next = state
        self.report = {
            "fresh": previous is None,
            "changed": len(changed),
            "whoosh_files": len(state.whoosh),
            "shards": len(state.shards),
            "shards_rebuilt": len(rebuild) if rebuild is not None else len(state.shards),
        }
        return plan

    def _whoosh_files(
        self, view: BuildView, index: Path, previous: _State | None, state: _State
    ) -> dict[str, Planned]:
        plan: dict[str, Planned] = {}
        listed = []
        for name in engine.index_files(index):
            known = previous.whoosh.get(name) if previous is not None else None
            size = (index / name).stat().st_size
            if known is not None and known[1] == size:
                sha256 = str(known[0])  # Whoosh never rewrites a file under the same name
            else:
                sha256, size = sha256_of_file(index / name)
            state.whoosh[name] = [sha256, size]
            plan[whoosh_path(name, sha256)] = Planned(sha256, size, index / name)
            listed.append({"name": name, "sha256": sha256, "size": size})
        manifest = {
            "format": MANIFEST_FORMAT,
            "index": engine.INDEX_NAME,
            "generation": state.generation,
            "plugins": len(view.facts),
            "built_at": view.timestamp,
            "source_commit": view.commit,
            "files": listed,
        }
        plan[WHOOSH_MANIFEST] = _planned(_encode(manifest))
        return plan

    def _shards(
        self,
        view: BuildView,
        *,
        index: Path,
        previous: _State | None,
        state: _State,
        rebuild: set[str] | None,
        categories: list[str],
    ) -> dict[str, Planned]:
        plan: dict[str, Planned] = {}
        kept = dict(previous.shards) if previous is not None and rebuild is not None else {}
        if rebuild is not None:
            # A kept shard missing from the output folder is made again.
            rebuild |= {k for k, (path, _, _) in kept.items() if view.unchanged(path) is None}
            for key in rebuild:
                kept.pop(key, None)
        with engine.open_reader(index) as reader:
            builder = browser.ShardBuilder(reader, categories, state.engines, self.limits)
            built = builder.build(rebuild, existing=previous.shards if previous else ())
        for key, (path, sha256, size) in kept.items():
            plan[path] = Planned(sha256, size, None)
            state.shards[key] = [path, sha256, size]
        for key, content in built.items():
            if content is None:
                continue
            path, packed = browser.shard_path(key, content)
            planned = _planned(packed)
            plan[path] = planned
            state.shards[key] = [path, planned.sha256, planned.size]
        state.shards = dict(sorted(state.shards.items()))
        manifest = browser.manifest_document(
            {k: v[0] for k, v in state.shards.items()},
            categories,
            state.engines,
            len(view.facts),
            view.timestamp,
        )
        plan[browser.MANIFEST] = _planned(manifest)
        return plan

    def committed(self, view: BuildView) -> None:
        """Save the state once the build's files are in place."""
        if self._next is None:
            return
        state = self._next
        document = {
            "fingerprint": state.fingerprint,
            "generation": state.generation,
            "plugins": state.plugins,
            "whoosh": state.whoosh,
            "engines": state.engines,
            "shards": state.shards,
        }
        write_atomic(self._folder(view) / "state.json", _encode(document))
        self._next = None
