"""The ODM file's metadata: ``Study`` (``GlobalVariables``, ``BasicDefinitions`` with the units, the
``MetaDataVersion`` of the protocol version) and ``AdminData`` (users, one ``Location`` per site, the
investigator's ``SignatureDef``), all from the protocol and the users the audit index found."""

from __future__ import annotations

from collections.abc import Mapping

from trialwright.exports.base import ExportSource
from trialwright.exports.odm.ae_outline import AE_EVENT, AE_FORM, AE_OID, ae_fields
from trialwright.exports.odm.outline import (
    DATA_TYPES,
    LOGS_EVENT,
    SIGNATURE_DEF,
    UNSCHEDULED,
    item_oid,
    log_oid,
    mdv_oid,
    outline,
    user_oid,
)
from trialwright.exports.odm.xmlstream import XmlStream
from trialwright.protocol import FieldType, FormField

__all__ = ["write_admin", "write_study"]


def write_study(xml: XmlStream, source: ExportSource, units: Mapping[str, str]) -> None:
    """The ``Study`` element: global variables, units and the protocol version's metadata."""
    p = source.protocol
    with xml.element("Study", {"OID": source.trial_id}):
        with xml.element("GlobalVariables"):
            xml.leaf("StudyName", text=p.short_name)
            xml.leaf("StudyDescription", text=p.trial.titles.scientific)
            xml.leaf("ProtocolName", text=source.trial_id)
        if units:
            with xml.element("BasicDefinitions"):
                for unit, oid in units.items():
                    with xml.element("MeasurementUnit", {"OID": oid, "Name": unit}):
                        xml.translated("Symbol", unit)
        _metadata(xml, source, units)


def _metadata(xml: XmlStream, source: ExportSource, units: Mapping[str, str]) -> None:
    p = source.protocol
    attrs = {"OID": mdv_oid(source.protocol_version), "Name": f"{p.trial_id} protocol {p.version.number}",
             "Description": f"Protocol version {p.version.number} of {p.version.date.isoformat()}"}  # fmt: skip
    with xml.element("MetaDataVersion", attrs):
        with xml.element("Protocol"):
            for n, oid in enumerate(outline(p).events, start=1):
                xml.leaf("StudyEventRef", {"StudyEventOID": oid, "OrderNumber": str(n),
                                           "Mandatory": "No" if oid in {UNSCHEDULED, AE_EVENT} else "Yes"})  # fmt: skip
        for v in p.visits:
            with xml.element("StudyEventDef", {"OID": f"SE.{v.id}", "Name": v.name, "Repeating": "No",
                                               "Type": "Scheduled"}):  # fmt: skip
                where = f"day {v.day} from {v.reference} (window -{v.window.before}/+{v.window.after})"
                xml.translated("Description", f"{v.kind} visit {v.id}: {where}", v.translations)
                for n, fid in enumerate(v.forms, start=1):
                    xml.leaf("FormRef", {"FormOID": f"F.{fid}", "OrderNumber": str(n), "Mandatory": "Yes"})
        with xml.element("StudyEventDef", {"OID": UNSCHEDULED, "Name": "Unscheduled visit", "Repeating": "Yes",
                                           "Type": "Unscheduled"}):  # fmt: skip
            for n, form in enumerate(p.forms, start=1):
                xml.leaf("FormRef", {"FormOID": f"F.{form.id}", "OrderNumber": str(n), "Mandatory": "No"})
        if p.logs:  # entries per participant, not per visit: one event holding every log, each entry repeating
            with xml.element("StudyEventDef", {"OID": LOGS_EVENT, "Name": "Logs", "Repeating": "No",
                                               "Type": "Common"}):  # fmt: skip
                xml.translated("Description", "Log forms: entries per participant, not per visit")
                for n, log in enumerate(p.logs, start=1):
                    xml.leaf("FormRef", {"FormOID": f"F.{log_oid(log.id)}", "OrderNumber": str(n),
                                         "Mandatory": "No"})  # fmt: skip
        with xml.element("StudyEventDef", {"OID": AE_EVENT, "Name": "Adverse events", "Repeating": "No",
                                           "Type": "Common"}):  # fmt: skip
            xml.translated("Description", "Adverse events: per participant, not per visit; one item group per event")
            xml.leaf("FormRef", {"FormOID": AE_FORM, "OrderNumber": "1", "Mandatory": "No"})
        # (oid part, name, description, fields, repeating): the forms, then the logs, then the adverse events
        defs = [(form.id, form.name, form.description, form.fields, "No") for form in p.forms]
        defs += [(log_oid(log.id), log.name, log.description, log.fields, "Yes") for log in p.logs]
        ae_described = "Each adverse event as its latest report states it"
        defs += [(AE_OID, "Adverse events", ae_described, list(ae_fields(p)), "Yes")]
        for oid, name, description, _, _ in defs:
            with xml.element("FormDef", {"OID": f"F.{oid}", "Name": name, "Repeating": "No"}):
                if description:
                    xml.translated("Description", description)
                xml.leaf("ItemGroupRef", {"ItemGroupOID": f"IG.{oid}", "Mandatory": "Yes"})
        for oid, name, _, fields, repeating in defs:
            with xml.element("ItemGroupDef", {"OID": f"IG.{oid}", "Name": name, "Repeating": repeating}):
                for n, f in enumerate(fields, start=1):
                    xml.leaf("ItemRef", {"ItemOID": item_oid(oid, f.id), "OrderNumber": str(n),
                                         "Mandatory": "Yes" if f.required and f.derived is None else "No",
                                         "MethodOID": f"MT.{oid}.{f.id}" if f.derived else None})  # fmt: skip
        for oid, _, _, fields, _ in defs:
            for f in fields:
                _item_def(xml, units, oid, f)
        for oid, _, _, fields, _ in defs:
            for f in (f for f in fields if f.choices):
                with xml.element("CodeList", {"OID": f"CL.{oid}.{f.id}", "Name": f"{oid}.{f.id}",
                                              "DataType": "text"}):  # fmt: skip
                    for n, c in enumerate(f.choices, start=1):
                        with xml.element("CodeListItem", {"CodedValue": c.code, "OrderNumber": str(n)}):
                            xml.translated("Decode", c.label, c.translations)
        for form in p.forms:
            for f in form.fields:
                if f.derived is not None:
                    attrs = {"OID": f"MT.{form.id}.{f.id}", "Name": f.derived.name, "Type": "Computation"}
                    with xml.element("MethodDef", attrs):
                        xml.translated("Description", f"{f.derived.describe()}, computed by trialwright")


def _item_def(xml: XmlStream, units: Mapping[str, str], form_id: str, f: FormField) -> None:
    digits = str(f.decimals) if f.type is FieldType.DECIMAL and f.decimals else None
    attrs = {
        "OID": item_oid(form_id, f.id),
        "Name": f.id,
        "DataType": DATA_TYPES[f.type],
        "SignificantDigits": digits,
    }
    with xml.element("ItemDef", attrs):
        if f.help:
            xml.translated("Description", f.help)
        xml.translated("Question", f.label, f.translations)
        if f.unit:
            xml.leaf("MeasurementUnitRef", {"MeasurementUnitOID": units[f.unit]})
        for limits, kind in ((f.hard_limits, "Hard"), (f.soft_limits, "Soft")):
            if limits is None:
                continue
            for bound, comparator in ((limits.min, "GE"), (limits.max, "LE")):
                if bound is not None:
                    with xml.element("RangeCheck", {"Comparator": comparator, "SoftHard": kind}):
                        xml.leaf("CheckValue", text=_number(bound))
        if f.choices:
            xml.leaf("CodeListRef", {"CodeListOID": f"CL.{form_id}.{f.id}"})
        for context, name in _aliases(f):
            xml.leaf("Alias", {"Context": context, "Name": name})


def write_admin(xml: XmlStream, source: ExportSource, users: Mapping[str, str | None]) -> None:
    """``AdminData``: the users the audit records name, the sites, the investigator's signature."""
    p = source.protocol
    with xml.element("AdminData", {"StudyOID": source.trial_id}):
        for name, role in sorted(users.items()):
            kind = "Investigator" if role == "investigator" else "Other"
            with xml.element("User", {"OID": user_oid(name), "UserType": kind}):
                xml.leaf("LoginName", text=name)
        for site in p.sites:
            with xml.element("Location", {"OID": site.code, "Name": site.name, "LocationType": "Site"}):
                xml.leaf("MetaDataVersionRef", {"StudyOID": source.trial_id,
                                                "MetaDataVersionOID": mdv_oid(source.protocol_version),
                                                "EffectiveDate": p.version.date.isoformat()})  # fmt: skip
        with xml.element("SignatureDef", {"OID": SIGNATURE_DEF, "Methodology": "Electronic"}):
            xml.leaf("Meaning", text=p.signature_meaning)
            xml.leaf("LegalReason", text="21 CFR Part 11 electronic signature of the investigator")


def _aliases(f: FormField) -> list[tuple[str, str]]:
    """The field's declared standard codes as ODM Alias (Context, Name) pairs, in the protocol's order. ODM
    allows one Alias per Context in an element, so a second LOINC or SNOMED CT code is ``LOINC.2``, ``SNOMED-CT.2``."""
    codes = f.codes
    if codes is None:
        return []
    out = [("CDASH", codes.cdash)] if codes.cdash else []
    for context, listed in (("LOINC", [c.code for c in codes.loinc]), ("SNOMED-CT", [c.code for c in codes.snomed])):
        out += [(context if i == 0 else f"{context}.{i + 1}", code) for i, code in enumerate(listed)]
    out += [("UCUM", codes.ucum)] if codes.ucum else []
    out += [(f"SDTM {codes.sdtm.domain}TESTCD", codes.sdtm.testcd)] if codes.sdtm else []
    return out


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
