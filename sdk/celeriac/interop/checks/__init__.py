"""Every conformance check in one place, each tied to a section of protocol/SPEC.md.

:data:`CHECKS` names the checks; :data:`HEADER_RULES`, :data:`ENVELOPE_FIELDS` and
:data:`RESULT_FIELDS` are the data they are driven by; :data:`DEVIATIONS` lists the known
deviations of foreign clients (SPEC.md Appendix B), which turn a failed check into a
``deviation`` only for the client that has it. :func:`check_message` checks one message a client
put on a broker; :func:`check_result` checks the records a worker wrote for one call.

Each part lives in a module of this package: ``catalog`` (the checks, their outcomes and the
tables they read), ``deviations``, ``received`` (:class:`RawMessage`), ``messages``
(:func:`check_message`, with ``expected``: the checks against the call a message is),
``results`` (:func:`check_result`) and ``collector``; import them from here.
"""

from __future__ import annotations

from .catalog import BREAKING as BREAKING
from .catalog import CHECKS, HEADER_RULES, Check, Outcome
from .catalog import COSMETIC as COSMETIC
from .catalog import DATA_LOSS as DATA_LOSS
from .catalog import DEVIATION as DEVIATION
from .catalog import EMBED_KEYS as EMBED_KEYS
from .catalog import ENVELOPE_FIELDS as ENVELOPE_FIELDS
from .catalog import FAIL as FAIL
from .catalog import KNOWN_CONTENT as KNOWN_CONTENT
from .catalog import NA as NA
from .catalog import PASS as PASS
from .catalog import READY_STATES as READY_STATES
from .catalog import RESULT_FIELDS as RESULT_FIELDS
from .catalog import SEVERITIES as SEVERITIES
from .catalog import SIGNATURE_KEYS as SIGNATURE_KEYS
from .catalog import WARN as WARN
from .catalog import missing_case as missing_case
from .catalog import skipped_case as skipped_case
from .deviations import DEVIATIONS, Deviation, apply_deviations
from .messages import check_message
from .received import RawMessage
from .received import b64 as b64
from .received import new_id as new_id
from .received import now_utc as now_utc
from .received import unb64 as unb64
from .results import check_result

__all__ = [
    "CHECKS",
    "DEVIATIONS",
    "HEADER_RULES",
    "Check",
    "Deviation",
    "Outcome",
    "RawMessage",
    "apply_deviations",
    "check_message",
    "check_result",
]
