"""The search stage's plan: search/whoosh/ for the CLI, search/v1/ for the browser.

Both are kept incrementally under the build's state folder: the Whoosh index itself
(`.plugindex/search/whoosh/`, updated with only the plugins whose documents changed),
the shards' postings and keys (`shards.sqlite`, see `builder.search.shard_tree`) and
`state.json` (which documents the index holds, the hashes of its files, the shards'
files). The shards are made from the search records, never read back from Whoosh.
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
from collections.abc import Mapping
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
from builder.search.shard_tree import STATE_FORMAT as TREE_FORMAT
from builder.search.shard_tree import Doc, ShardTree

log = logging.getLogger(__name__)

WHOOSH_ROOT = "search/whoosh/"
WHOOSH_MANIFEST = WHOOSH_ROOT + "manifest.json"
MANIFEST_FORMAT = 1
_STATE_FORMAT = 3  # 3: shards from the records (shards.sqlite), engines by name


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
    shards: dict[str, list[Any]] = field(default_factory=dict)  # key -> [path, sha256, size]


class SearchPlanner:
    """Plans the search index and the browser shards of one build (see `stage.SearchStage`)."""

    def __init__(self, limits: browser.ShardLimits | None = None) -> None:
        self.limits = limits or browser.ShardLimits()
        self._next: _State | None = None
        self._tree: ShardTree | None = None  # its transaction ends in `committed`
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
            TREE_FORMAT,
            [c.slug for c in view.registry.categories],
            [self.limits.max_bytes, self.limits.top, self.limits.more, self.limits.max_depth],
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
        if self._tree is not None:  # a build that failed after planning: roll it back
            self._tree.close()
            self._tree = None
        previous = self._load(view)
        tree = None
        if previous is not None:
            tree = ShardTree.open(
                self._folder(view) / "shards.sqlite", self.limits, previous.generation
            )
            if tree is None:
                previous = None
        try:
            plan = self._plan(view, previous, tree)
        except BaseException:
            if self._tree is not None:
                self._tree.close()
                self._tree = None
            elif tree is not None:
                tree.close()
            raise
        return plan

    def _plan(
        self, view: BuildView, previous: _State | None, tree: ShardTree | None
    ) -> dict[str, Planned]:
        index = self._folder(view) / "whoosh"
        current = {name: facts.doc_sha256 for name, facts in view.facts.items()}
        state = _State(fingerprint=self._fingerprint(view), plugins=current)
        categories = [c.slug for c in view.registry.categories]
        if previous is None or tree is None:
            shutil.rmtree(index, ignore_errors=True)
            records = [record_of(f, view.document(n)) for n, f in sorted(view.facts.items())]
            texts = {r["name"]: engine.field_texts(r) for r in records}
            self._tree = tree = ShardTree.create(self._folder(view) / "shards.sqlite", self.limits)
            touched = tree.load_all(self._docs(records, categories, texts))
            engine.update_index(index, records, [], fresh=True, texts=texts)
            changed: list[str] = sorted(current)
        else:
            self._tree = tree
            changed = sorted(n for n, sha in current.items() if previous.plugins.get(n) != sha)
            removed = sorted(set(previous.plugins) - set(current))
            records = [record_of(view.facts[n], view.document(n)) for n in changed]
            texts = {r["name"]: engine.field_texts(r) for r in records}
            touched = set()
            if changed or removed:
                engine.update_index(index, records, removed, texts=texts)
                touched = tree.update(self._docs(records, categories, texts), removed)
        state.generation = engine.generation(index)
        plan: dict[str, Planned] = {}
        plan.update(self._whoosh_files(view, index, previous, state))
        built = tree.settle(touched)
        plan.update(self._shards(view, tree, previous, state, built, categories))
        self._next = state
        self.report = {
            "fresh": previous is None,
            "changed": len(changed),
            "whoosh_files": len(state.whoosh),
            "shards": len(state.shards),
            "shards_rebuilt": sum(1 for content in built.values() if content is not None),
            "shards_removed": sum(1 for content in built.values() if content is None),
        }
        return plan

    @staticmethod
    def _docs(
        records: list[dict[str, Any]],
        categories: list[str],
        texts: Mapping[str, Mapping[str, str]],
    ) -> list[Doc]:
        numbers = {c: i for i, c in enumerate(categories)}
        return [
            Doc(
                r["name"],
                browser.dumps(browser.short_record(r, numbers)),
                browser.shard_terms(r, texts[r["name"]]),
            )
            for r in records
        ]

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

    def _shards(  # noqa: PLR0917 - one private step of plan
        self,
        view: BuildView,
        tree: ShardTree,
        previous: _State | None,
        state: _State,
        built: dict[str, bytes | None],
        categories: list[str],
    ) -> dict[str, Planned]:
        plan: dict[str, Planned] = {}
        kept = dict(previous.shards) if previous is not None else {}
        for key, content in built.items():
            kept.pop(key, None)
            if content is None:
                continue
            path, packed = browser.shard_path(key, content)
            planned = _planned(packed)
            plan[path] = planned
            state.shards[key] = [path, planned.sha256, planned.size]
        for key, (path, sha256, size) in kept.items():
            if view.unchanged(path) is None:  # a kept shard missing from the output folder
                again, packed = browser.shard_path(key, tree.encode(key))
                planned = _planned(packed)
                plan[again] = planned
                state.shards[key] = [again, planned.sha256, planned.size]
                continue
            plan[path] = Planned(sha256, size, None)
            state.shards[key] = [path, sha256, size]
        state.shards = dict(sorted(state.shards.items()))
        lists = browser.key_lists({k: v[0] for k, v in state.shards.items()})
        for path, packed in lists.values():
            plan[path] = _planned(packed)
        manifest = browser.manifest_document(
            {root: path for root, (path, _) in lists.items()},
            categories,
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
        if self._tree is not None:
            self._tree.commit(state.generation)
            self._tree = None
        document = {
            "fingerprint": state.fingerprint,
            "generation": state.generation,
            "plugins": state.plugins,
            "whoosh": state.whoosh,
            "shards": state.shards,
        }
        write_atomic(self._folder(view) / "state.json", _encode(document))
        self._next = None
