"""Measure the name-similarity rule: false positives on real names, catches on squats.

Every name of `data/plugin-names.txt` (10,000 real, distinct plugin names) is checked
against all the others: a flag there is a false positive. Squats are made from a
sample of those names in each way a squatter works (a typing slip, look-alike
characters plus a slip, an affix, reordered words, other hyphens), and each must be
flagged. The rule as it was (normalised, look-alike or any one edit) runs beside the
current one in the same process, so the figures compare directly.

    python benchmarks/bench_names.py [--sample 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from builder.format.names import NameIndex, normalise, skeleton, within_one_edit

NAMES = Path(__file__).with_name("data") / "plugin-names.txt"

Rule = Callable[[str], str | None]


def read_names() -> list[str]:
    """Return the real names, in file order."""
    lines = NAMES.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def previous_rule(names: Iterable[str]) -> Rule:
    """The rule before token, affix and typing-slip checks: any one edit was flagged."""
    by_normal = {normalise(n): n for n in names}
    by_skeleton = {skeleton(n): n for n in names}
    by_deletion: dict[str, set[str]] = {}
    for n in by_normal:
        for v in {n, *(n[:i] + n[i + 1 :] for i in range(len(n)))}:
            by_deletion.setdefault(v, set()).add(n)

    def check(name: str) -> str | None:
        own = normalise(name)
        if by_normal.get(own, name) != name:
            return "normalised"
        if by_skeleton.get(skeleton(name), name) != name:
            return "look-alike"
        for v in {own, *(own[:i] + own[i + 1 :] for i in range(len(own)))}:
            for other in by_deletion.get(v, ()):
                if other != own and within_one_edit(other, own):
                    return "one edit"
        return None

    return check


def current_rule(names: Iterable[str]) -> Rule:
    """The rule as `validate --base` applies it."""
    index = NameIndex(names)

    def check(name: str) -> str | None:
        found = index.resembled(name)
        return found.how if found is not None else None

    return check


def squats(name: str, rng: random.Random) -> dict[str, str]:
    """Return one squat of `name` per technique (where the name allows it)."""
    made: dict[str, str] = {}
    words = name.split("-")
    keys = "qwertyuiopasdfghjklzxcvbnm"
    i = rng.randrange(1, len(name) - 1)
    if name[i] != "-" and name[i + 1] != "-" and name[i] != name[i + 1]:
        made["swap"] = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    if name[i] != "-":
        made["doubled"] = name[:i] + name[i] + name[i:]
        made["missed"] = name[:i] + name[i + 1 :]
    near = {"t": "r", "e": "w", "s": "a", "o": "p", "n": "m", "a": "s", "i": "u", "r": "t"}
    spots = [j for j, c in enumerate(name) if c in near]
    if spots:
        j = rng.choice(spots)
        made["near key"] = name[:j] + near[name[j]] + name[j + 1 :]
    if "l" in name:
        made["look-alike"] = name.replace("l", "1", 1)
    if "m" in name and spots:
        j = rng.choice(spots)
        slipped = name[:j] + near[name[j]] + name[j + 1 :]
        made["look-alike + slip"] = slipped.replace("m", "rn", 1)
    made["affix"] = f"{name}-{rng.choice(['pro', 'plus', 'official', 'v2'])}"
    made["prefix"] = f"{rng.choice(['py', 'new', 'real'])}-{name}"
    if len(words) > 1:
        made["reordered"] = "-".join(reversed(words))
        made["hyphens"] = name.replace("-", "", 1)
    del keys
    return {how: squat for how, squat in made.items() if squat != name}


def main() -> None:
    """Print false-positive rates and catch rates, before and after."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=300, help="names to make squats of")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = read_names()
    rules = {"before": previous_rule(names), "after": current_rule(names)}
    print(f"{len(names)} real plugin names ({NAMES.name})")
    for label, rule in rules.items():
        started = time.perf_counter()
        flagged = [(n, why) for n in names if (why := rule(n)) is not None]
        seconds = time.perf_counter() - started
        kinds = Counter(why.split(" (")[0] for _, why in flagged)
        print(
            f"  {label:>6}: {len(flagged)} flagged = {100 * len(flagged) / len(names):.2f}% "
            f"false positives ({seconds * 1e6 / len(names):.0f} µs a name): {dict(kinds)}"
        )
        for name, why in flagged[:4]:
            print(f"          e.g. {name}: {why}")
    rng = random.Random(args.seed)
    sample = rng.sample([n for n in names if len(n) >= 8], args.sample)
    caught: dict[str, Counter[str]] = {label: Counter() for label in rules}
    made: Counter[str] = Counter()
    for name in sample:
        for how, squat in squats(name, rng).items():
            if squat in names:
                continue
            made[how] += 1
            for label, rule in rules.items():
                caught[label][how] += rule(squat) is not None
    print(f"squats made from {args.sample} names: caught / made")
    for how in made:
        row = "  ".join(f"{label} {caught[label][how]:>4}" for label in rules)
        print(f"  {how:>18}: {made[how]:>4} made  {row}")
    total = sum(made.values())
    for label in rules:
        print(f"  {label:>6}: {100 * sum(caught[label].values()) / total:.1f}% of {total} caught")


if __name__ == "__main__":
    main()
