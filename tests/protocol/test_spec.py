"""SPEC.md points at golden vectors that exist, and every vector is cited by some section."""

from __future__ import annotations

import re
from pathlib import Path

from .vectors import VECTORS, all_vectors

SPEC = (VECTORS.parent / "SPEC.md").read_text(encoding="utf-8")
# `captured/redis/plain_args`, `captured/*/unicode`, `synthetic/kafka/*.json`, with or without
# the protocol/vectors/ prefix; placeholders such as <case> or X are not references.
_REF = re.compile(
    r"`(?:protocol/vectors/)?((?:captured|synthetic|malformed|foreign)/[A-Za-z0-9_./*-]+)`"
)


def _expand(ref: str) -> list[Path]:
    ref = ref.removesuffix(".json")
    brokers = ("redis", "amqp", "sqs") if "/*/" in ref else ("",)
    found: list[Path] = []
    for broker in brokers:
        pattern = ref.replace("/*/", f"/{broker}/") if broker else ref
        found += VECTORS.glob(pattern + ".json")
        found += VECTORS.glob(pattern + "_[0-9].json")
        if pattern.endswith("/"):
            found += VECTORS.glob(pattern + "*.json")
    return found


def test_every_vector_reference_resolves() -> None:
    refs = sorted(set(_REF.findall(SPEC)))
    assert refs, "SPEC.md cites no vectors"
    missing = [r for r in refs if not _expand(r)]
    assert not missing, f"SPEC.md cites vectors that do not exist: {missing}"


def test_every_vector_is_cited() -> None:
    cited = {p for r in _REF.findall(SPEC) for p in _expand(r)}
    uncited = sorted(str(p.relative_to(VECTORS)) for p in all_vectors() if p not in cited)
    assert not uncited, f"vectors no SPEC.md section cites: {uncited}"


def test_every_numbered_section_cites_vectors() -> None:
    sections = re.split(r"\n## (?=\d+\.)", SPEC)[1:]
    for section in sections:
        title = section.splitlines()[0]
        if title.startswith(("1.", "13.")):  # introduction and versioning have no vectors
            continue
        assert _REF.search(section), f"section {title!r} cites no vectors"
