"""Cache keys: a pure function of plain data.

key = xxh3_128 of the canonical JSON of its components: the task's name, its
cache version (the user's ``cache_version`` or the code fingerprint), its
interface (input and output types) and the digests of the actual input
values, minus ``cache_ignore_input_vars``. Inputs are digests of upstream
*results*, so an upstream task that recomputes identical output leaves its
consumers' keys, and so their cache entries, unchanged (early cutoff).

Every entry keeps its components, so a miss can be explained by comparing
them with the closest earlier entry of the same task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from .fingerprint import digest_bytes


@dataclass(frozen=True)
class CacheKey:
    """A key and the components it was made from."""

    key: str
    components: dict[str, str]


def interface_text(inputs: Mapping[str, str], outputs: Mapping[str, str]) -> str:
    """Canonical text of an interface given type descriptions by name."""
    return json.dumps({"inputs": dict(inputs), "outputs": dict(outputs)}, sort_keys=True,
                      separators=(",", ":"))


def make_key(*, task: str, cache_version: str, interface: str,
             inputs: Mapping[str, str], ignored: tuple[str, ...] = ()) -> CacheKey:
    """Build the cache key of one call; ``inputs`` maps input names to value digests."""
    components = {"task": task, "cache_version": cache_version,
                  "interface": digest_bytes(interface.encode())}
    for name, digest in inputs.items():
        if name not in ignored:
            components[f"input {name}"] = digest
    text = json.dumps(components, sort_keys=True, separators=(",", ":"))
    return CacheKey(digest_bytes(text.encode()), components)


def explain_difference(now: Mapping[str, str], before: Mapping[str, str],
                       code_now: Mapping[str, str] | None = None,
                       code_before: Mapping[str, str] | None = None) -> list[str]:
    """Why ``now`` misses where ``before`` was cached: one line per changed component."""
    reasons: list[str] = []
    for name in sorted(set(now) | set(before)):
        if now.get(name) == before.get(name):
            continue
        code_versions = str(now.get(name, "")).startswith("code:") and str(
            before.get(name, "")).startswith("code:")
        if name == "cache_version" and code_versions and code_now and code_before:
            reasons.extend(_code_reasons(code_now, code_before) or ["cache version changed"])
        elif name == "cache_version":
            reasons.append(f"cache version changed ({before.get(name)} -> {now.get(name)})")
        elif name == "interface":
            reasons.append("the task's input or output types changed")
        elif name.startswith("input "):
            reasons.append(_input_reason(name[6:], now.get(name), before.get(name)))
        else:
            reasons.append(f"{name} changed")
    return reasons


def _input_reason(name: str, now: str | None, before: str | None) -> str:
    if before is None:
        return f"input {name!r} is new"
    if now is None:
        return f"input {name!r} was removed or is now ignored"
    return f"input {name!r} changed ({before[:10]} -> {now[:10]})"


def _code_reasons(now: Mapping[str, str], before: Mapping[str, str]) -> list[str]:
    reasons = []
    for label in sorted(set(now) | set(before)):
        if label not in before:
            reasons.append(f"{label} added")
        elif label not in now:
            reasons.append(f"{label} removed")
        elif now[label] != before[label]:
            reasons.append(f"code of {label} changed")
    return reasons


def closest(now: Mapping[str, str], candidates: list[Mapping[str, str]]) -> int | None:
    """Index of the candidate sharing most components with ``now`` (None if no candidates)."""
    best, best_score = None, -1
    for i, candidate in enumerate(candidates):
        score = sum(1 for k, v in now.items() if candidate.get(k) == v)
        if score > best_score:
            best, best_score = i, score
    return best
