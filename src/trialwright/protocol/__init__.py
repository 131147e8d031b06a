"""The protocol as code: one YAML file holds a trial's whole design, validated into a frozen ``Protocol``.

``load_protocol(path)`` reads a file and returns a ``LoadedProtocol`` (the model, the exact text and its
SHA-256), or raises ``ProtocolError`` listing every problem as ``FILE:LINE: path: message``. The file
format is documented field by field in docs/protocol.md.
"""

from trialwright.protocol.derivations import DERIVATIONS, Derivation
from trialwright.protocol.design import KNOWN_ROLES, Arm, Criterion, Rule, ScreeningField
from trialwright.protocol.forms import DataCheck, FieldType, FormDef, FormField, Visit
from trialwright.protocol.loader import LoadedProtocol, Problem, ProtocolError, load_protocol, load_protocol_text
from trialwright.protocol.model import Protocol
from trialwright.protocol.outcomes import Outcome
from trialwright.protocol.registry import Site

__all__ = [
    "DERIVATIONS",
    "KNOWN_ROLES",
    "Arm",
    "Criterion",
    "DataCheck",
    "Derivation",
    "FieldType",
    "FormDef",
    "FormField",
    "LoadedProtocol",
    "Outcome",
    "Problem",
    "Protocol",
    "ProtocolError",
    "Rule",
    "ScreeningField",
    "Site",
    "Visit",
    "load_protocol",
    "load_protocol_text",
]
