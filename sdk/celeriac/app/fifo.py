"""SQS FIFO options of a call (``apply_async(MessageGroupId=..., MessageDeduplicationId=...)``),
carried as message properties, where Kombu puts them and the SQS transport reads them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from celeriac.protocol import ValidationError

__all__ = ["FIFO_OPTIONS", "fifo_properties"]

log = logging.getLogger("celeriac")

#: Celery's (Kombu's) names, passed on to SQS's SendMessage unchanged.
FIFO_OPTIONS = ("MessageGroupId", "MessageDeduplicationId")
_warned: set[tuple[str, str]] = set()


def _check(name: str, value: Any) -> str:
    """SQS's rule: 1 to 128 characters, letters, digits and ASCII punctuation."""
    if not isinstance(value, str):
        raise ValidationError(name, f"must be a string, not {type(value).__name__}")
    if not 1 <= len(value) <= 128:
        raise ValidationError(name, f"must be 1 to 128 characters long, not {len(value)}")
    bad = sorted({c for c in value if not 33 <= ord(c) <= 126})
    if bad:
        raise ValidationError(
            name, f"may hold letters, digits and ASCII punctuation only, not {''.join(bad)!r}"
        )
    return value


def fifo_properties(options: Mapping[str, Any], broker_url: Any) -> dict[str, str]:
    """The FIFO options given, checked, as message properties; on a broker other than SQS
    they mean nothing (as with Celery there), which is said once per option."""
    found = {n: _check(n, options[n]) for n in FIFO_OPTIONS if options.get(n) is not None}
    if found:
        first = broker_url[0] if isinstance(broker_url, list | tuple) else str(broker_url)
        scheme = first.split("://", 1)[0].lower()
        for name in found:
            if scheme != "sqs" and (name, scheme) not in _warned:
                _warned.add((name, scheme))
                log.warning(
                    "option %s applies to SQS FIFO queues only; it has no effect on %s://",
                    name,
                    scheme,
                )
    return found
