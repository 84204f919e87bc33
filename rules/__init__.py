"""Rule engine stage: formats, normalisation, comparison with the ERP record, verdicts.

Public interface: :func:`evaluate`, :func:`load_rules`, :class:`RulesHolder` and the result
models :class:`Decision`, :class:`FieldCheck`, :class:`Verdict`, :class:`FieldStatus`.
"""

from rules.engine import check_field, evaluate
from rules.loader import RulesError, RulesHolder, load_rules
from rules.models import (
    Decision,
    FieldCheck,
    FieldRule,
    FieldStatus,
    Policy,
    RuleSet,
    Verdict,
)

__all__ = [
    "Decision",
    "FieldCheck",
    "FieldRule",
    "FieldStatus",
    "Policy",
    "RuleSet",
    "RulesError",
    "RulesHolder",
    "Verdict",
    "check_field",
    "evaluate",
    "load_rules",
]
