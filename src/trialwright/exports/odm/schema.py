"""The XSD of trialwright's vendor extension to ODM 1.3.2, and of ODM 1.3.2 redefined to admit it (the way
Define-XML 2.x extends ODM: ``xs:redefine`` of CDISC's ``ODM1-3-2-foundation.xsd`` adding the extension's elements
to the ``...ElementExtension`` groups ODM leaves empty for this), for validating an export with a schema validator.

The export writes both beside the XML (``SCHEMA_FILES``). The redefining schema names CDISC's files by their own
names, relative to itself: put CDISC's ODM 1.3.2 schema (``ODM1-3-2-foundation.xsd``, ``xml.xsd``,
``xmldsig-core-schema.xsd``, from CDISC's ODM 1.3.2 distribution) in the same folder and validate the XML
against ``trialwright-odm1-3-2.xsd``. trialwright does not redistribute CDISC's files with an export."""

from __future__ import annotations

from pathlib import Path

from trialwright.exports.odm.outline import ODM_NS, TW_NS

__all__ = ["EXTENDED_SCHEMA", "NAMESPACE_SCHEMA", "SCHEMA_FILES", "extension_schema"]

#: The extension's own namespace schema, and ODM 1.3.2 redefined to admit it (the file to validate against).
NAMESPACE_SCHEMA = "trialwright-odm-ns.xsd"
EXTENDED_SCHEMA = "trialwright-odm1-3-2.xsd"
SCHEMA_FILES = (NAMESPACE_SCHEMA, EXTENDED_SCHEMA)

_TW_XSD = """<?xml version="1.0" encoding="UTF-8"?>
<!-- trialwright's vendor extension to CDISC ODM 1.3.2: the elements (see trialwright.exports.odm). -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{tw}" xmlns:tw="{tw}"
           xmlns:odm="{odm}" elementFormDefault="qualified" attributeFormDefault="unqualified">
  <xs:import namespace="{odm}"/>
  <xs:simpleType name="status">
    <xs:restriction base="xs:string">
      <xs:enumeration value="not_done"/><xs:enumeration value="not_applicable"/>
      <xs:enumeration value="below_lloq"/><xs:enumeration value="above_uloq"/><xs:enumeration value="derived"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="state">
    <xs:restriction base="xs:string">
      <xs:enumeration value="draft"/><xs:enumeration value="complete"/><xs:enumeration value="verified"/>
      <xs:enumeration value="signed"/><xs:enumeration value="locked"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:element name="Action" type="xs:string"/>
  <xs:element name="StoredValue">
    <xs:complexType>
      <xs:attribute name="Status" type="tw:status"/>
      <xs:attribute name="Reason" type="xs:string"/>
      <xs:attribute name="Unit" type="xs:string"/>
      <xs:attribute name="Entered" type="xs:string"/>
      <xs:attribute name="Limit" type="xs:string"/>
      <xs:attribute name="Components" type="xs:string"/>
      <xs:attribute name="Value" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="History">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Earlier" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence>
              <xs:element ref="odm:AuditRecord"/>
              <xs:element ref="tw:StoredValue" minOccurs="0"/>
            </xs:sequence>
            <xs:attribute name="Value" type="xs:string"/>
            <xs:attribute name="IsNull"><xs:simpleType><xs:restriction base="xs:string">
              <xs:enumeration value="Yes"/></xs:restriction></xs:simpleType></xs:attribute>
            <xs:attribute name="Removed"><xs:simpleType><xs:restriction base="xs:string">
              <xs:enumeration value="Yes"/></xs:restriction></xs:simpleType></xs:attribute>
            <xs:attribute name="Action" type="xs:string">
              <xs:annotation><xs:documentation>The audit action the earlier record recorded (a value's, a
                query's or an element's), never in its AuditRecord; absent where it is unknown.</xs:documentation>
              </xs:annotation>
            </xs:attribute>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
  <xs:element name="RemovedItemData">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="odm:AuditRecord"/>
        <xs:element ref="tw:History" minOccurs="0"/>
      </xs:sequence>
      <xs:attribute name="ItemOID" type="xs:string" use="required"/>
      <xs:attribute name="Removed" use="required"><xs:simpleType><xs:restriction base="xs:string">
        <xs:enumeration value="Yes"/></xs:restriction></xs:simpleType></xs:attribute>
    </xs:complexType>
  </xs:element>
  <xs:element name="Form">
    <xs:complexType>
      <xs:attribute name="State" type="tw:state" use="required"/>
      <xs:attribute name="Version" type="xs:positiveInteger" use="required"/>
      <xs:attribute name="UpdatedAt" type="xs:dateTime" use="required"/>
      <xs:attribute name="UpdatedBy" type="xs:string" use="required"/>
      <xs:attribute name="VerifiedBy" type="xs:string"/>
      <xs:attribute name="VerifiedAt" type="xs:dateTime"/>
      <xs:attribute name="SignedBy" type="xs:string"/>
      <xs:attribute name="SignedAt" type="xs:dateTime"/>
      <xs:attribute name="LockedBy" type="xs:string"/>
      <xs:attribute name="LockedAt" type="xs:dateTime"/>
      <xs:attribute name="StateBeforeLock" type="tw:state"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="LogEntry">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Coding" minOccurs="0">
          <xs:complexType>
            <xs:sequence>
              <xs:element name="Level" minOccurs="0" maxOccurs="unbounded">
                <xs:complexType>
                  <xs:attribute name="Level" type="xs:positiveInteger" use="required"/>
                  <xs:attribute name="Code" type="xs:string" use="required"/>
                  <xs:attribute name="Name" type="xs:string" use="required"/>
                </xs:complexType>
              </xs:element>
            </xs:sequence>
            <xs:attribute name="Dictionary" use="required">
              <xs:simpleType>
                <xs:restriction base="xs:string">
                  <xs:enumeration value="ATC"/><xs:enumeration value="MedDRA"/>
                </xs:restriction>
              </xs:simpleType>
            </xs:attribute>
            <xs:attribute name="Version" type="xs:string" use="required"/>
            <xs:attribute name="Verbatim" type="xs:string" use="required"/>
            <xs:attribute name="Code" type="xs:string" use="required"/>
            <xs:attribute name="Name" type="xs:string" use="required"/>
            <xs:attribute name="CodedAt" type="xs:dateTime"/>
            <xs:attribute name="CodedBy" type="xs:string"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:attribute name="State" use="required">
        <xs:simpleType>
          <xs:restriction base="xs:string">
            <xs:enumeration value="active"/><xs:enumeration value="removed"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
      <xs:attribute name="Version" type="xs:positiveInteger" use="required"/>
      <xs:attribute name="UpdatedAt" type="xs:dateTime" use="required"/>
      <xs:attribute name="UpdatedBy" type="xs:string" use="required"/>
      <xs:attribute name="RemovedReason" type="xs:string"/>
      <xs:attribute name="CreatedAt" type="xs:dateTime"/>
      <xs:attribute name="CreatedBy" type="xs:string"/>
      <xs:attribute name="ProtocolVersion" type="xs:string"/>
      <xs:attribute name="VerifiedBy" type="xs:string"/>
      <xs:attribute name="VerifiedAt" type="xs:dateTime"/>
      <xs:attribute name="SignedBy" type="xs:string"/>
      <xs:attribute name="SignedAt" type="xs:dateTime"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="Query">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="odm:AuditRecord" minOccurs="0"/>
        <xs:element ref="tw:History" minOccurs="0"/>
      </xs:sequence>
      <xs:attribute name="ID" type="xs:positiveInteger" use="required"/>
      <xs:attribute name="ItemOID" type="xs:string"/>
      <xs:attribute name="Origin" use="required">
        <xs:simpleType>
          <xs:restriction base="xs:string">
            <xs:enumeration value="soft_limit"/><xs:enumeration value="data_check"/>
            <xs:enumeration value="manual"/><xs:enumeration value="system"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
      <xs:attribute name="CheckID" type="xs:string"/>
      <xs:attribute name="Status" use="required">
        <xs:simpleType>
          <xs:restriction base="xs:string">
            <xs:enumeration value="open"/><xs:enumeration value="answered"/><xs:enumeration value="closed"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
      <xs:attribute name="Text" type="xs:string" use="required"/>
      <xs:attribute name="RaisedAt" type="xs:dateTime" use="required"/>
      <xs:attribute name="RaisedBy" type="xs:string" use="required"/>
      <xs:attribute name="Answer" type="xs:string"/>
      <xs:attribute name="AnsweredAt" type="xs:dateTime"/>
      <xs:attribute name="AnsweredBy" type="xs:string"/>
      <xs:attribute name="ClosedAt" type="xs:dateTime"/>
      <xs:attribute name="ClosedBy" type="xs:string"/>
      <xs:attribute name="CloseNote" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="AdverseEvent">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Report" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence>
              <xs:element name="Assessment" type="xs:string"/>
            </xs:sequence>
            <xs:attribute name="Sequence" type="xs:nonNegativeInteger" use="required"/>
            <xs:attribute name="ReportedAt" type="xs:dateTime" use="required"/>
            <xs:attribute name="ReportedBy" type="xs:string" use="required"/>
            <xs:attribute name="ProtocolVersion" type="xs:string" use="required"/>
            <xs:attribute name="Reason" type="xs:string"/>
            <xs:attribute name="Serious" type="xs:boolean" use="required"/>
            <xs:attribute name="Related" type="xs:boolean" use="required"/>
            <xs:attribute name="Expected" type="xs:boolean" use="required"/>
            <xs:attribute name="Susar" type="xs:boolean" use="required"/>
          </xs:complexType>
        </xs:element>
        <xs:element name="Due" minOccurs="0" maxOccurs="unbounded">
          <xs:complexType>
            <xs:attribute name="Kind" type="xs:string" use="required"/>
            <xs:attribute name="DueAt" type="xs:dateTime" use="required"/>
          </xs:complexType>
        </xs:element>
        <xs:element name="Submission" minOccurs="0" maxOccurs="unbounded">
          <xs:complexType>
            <xs:attribute name="Kind" type="xs:string" use="required"/>
            <xs:attribute name="SubmittedAt" type="xs:dateTime" use="required"/>
            <xs:attribute name="Note" type="xs:string"/>
            <xs:attribute name="RecordedAt" type="xs:dateTime" use="required"/>
            <xs:attribute name="RecordedBy" type="xs:string" use="required"/>
          </xs:complexType>
        </xs:element>
        <xs:element name="Coding" minOccurs="0">
          <xs:complexType>
            <xs:attribute name="Dictionary" type="xs:string" fixed="MedDRA" use="required"/>
            <xs:attribute name="Version" type="xs:string" use="required"/>
            <xs:attribute name="Verbatim" type="xs:string" use="required"/>
            <xs:attribute name="LltCode" type="xs:positiveInteger" use="required"/>
            <xs:attribute name="LltName" type="xs:string" use="required"/>
            <xs:attribute name="PtCode" type="xs:positiveInteger" use="required"/>
            <xs:attribute name="PtName" type="xs:string" use="required"/>
            <xs:attribute name="HltCode" type="xs:positiveInteger" use="required"/>
            <xs:attribute name="HltName" type="xs:string" use="required"/>
            <xs:attribute name="HlgtCode" type="xs:positiveInteger" use="required"/>
            <xs:attribute name="HlgtName" type="xs:string" use="required"/>
            <xs:attribute name="SocCode" type="xs:positiveInteger" use="required"/>
            <xs:attribute name="SocName" type="xs:string" use="required"/>
            <xs:attribute name="CodedAt" type="xs:dateTime" use="required"/>
            <xs:attribute name="CodedBy" type="xs:string" use="required"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:attribute name="CreatedAt" type="xs:dateTime" use="required"/>
      <xs:attribute name="CreatedBy" type="xs:string" use="required"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="Visit">
    <xs:complexType>
      <xs:attribute name="Date" type="xs:date"/>
      <xs:attribute name="MissedReason" type="xs:string"/>
      <xs:attribute name="Label" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="Enrolment">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="ScreeningValues" type="xs:string"/>
        <xs:element name="Withdrawal" minOccurs="0" maxOccurs="unbounded">
          <xs:complexType>
            <xs:attribute name="Scope" type="xs:string" use="required"/>
            <xs:attribute name="On" type="xs:date" use="required"/>
            <xs:attribute name="Reason" type="xs:string" use="required"/>
            <xs:attribute name="Cause" type="xs:string"/>
            <xs:attribute name="RecordedAt" type="xs:dateTime"/>
            <xs:attribute name="RecordedBy" type="xs:string"/>
          </xs:complexType>
        </xs:element>
        <xs:element name="Consent" minOccurs="0" maxOccurs="unbounded" type="tw:ConsentRecord"/>
        <xs:element ref="tw:History" minOccurs="0"/>
      </xs:sequence>
      <xs:attribute name="ScreeningNumber" type="xs:string" use="required"/>
      <xs:attribute name="ScreenedOn" type="xs:date" use="required"/>
      <xs:attribute name="EnrolledAt" type="xs:dateTime" use="required"/>
      <xs:attribute name="ConsentGivenBy" type="xs:string"/>
      <xs:attribute name="ConsentedAt" type="xs:dateTime"/>
      <xs:attribute name="RandomizationNumber" type="xs:positiveInteger"/>
      <xs:attribute name="RandomizedAt" type="xs:dateTime"/>
      <xs:attribute name="Stratum" type="xs:string"/>
      <xs:attribute name="ConsentFormVersion" type="xs:string"/>
      <xs:attribute name="ConsentKind">
        <xs:simpleType>
          <xs:restriction base="xs:string">
            <xs:enumeration value="initial"/><xs:enumeration value="reconsent"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
      <xs:attribute name="ConsentObtainedBy" type="xs:string"/>
      <xs:attribute name="RepresentativeName" type="xs:string"/>
      <xs:attribute name="RepresentativeRelationship" type="xs:string"/>
      <xs:attribute name="ConsentWitness" type="xs:string"/>
      <xs:attribute name="ConsentRecordedAt" type="xs:dateTime"/>
      <xs:attribute name="ConsentRecordedBy" type="xs:string"/>
      <xs:attribute name="ConsentId" type="xs:positiveInteger"/>
      <xs:attributeGroup ref="tw:Assent"/>
    </xs:complexType>
  </xs:element>
  <xs:attributeGroup name="Assent">
    <xs:attribute name="Assent">
      <xs:simpleType>
        <xs:restriction base="xs:string">
          <xs:enumeration value="given"/><xs:enumeration value="dissent"/><xs:enumeration value="not_sought"/>
        </xs:restriction>
      </xs:simpleType>
    </xs:attribute>
    <xs:attribute name="AssentObtainedBy" type="xs:string"/>
    <xs:attribute name="AssentObtainedAt" type="xs:dateTime"/>
    <xs:attribute name="AssentFormVersion" type="xs:string"/>
    <xs:attribute name="AssentNotSoughtReason" type="xs:string"/>
    <xs:attribute name="ProtocolVersionInForce" type="xs:string"/>
    <xs:attribute name="AgeInForce" type="xs:decimal"/>
    <xs:attribute name="AssentRuleInForce">
      <xs:simpleType>
        <xs:restriction base="xs:string"><xs:pattern value="sha256:[0-9a-f]{{64}}"/></xs:restriction>
      </xs:simpleType>
    </xs:attribute>
  </xs:attributeGroup>
  <xs:complexType name="ConsentRecord">
    <xs:attribute name="Id" type="xs:positiveInteger" use="required"/>
    <xs:attribute name="FormVersion" type="xs:string" use="required"/>
    <xs:attribute name="GivenBy" use="required">
      <xs:simpleType>
        <xs:restriction base="xs:string">
          <xs:enumeration value="participant"/><xs:enumeration value="representative"/>
        </xs:restriction>
      </xs:simpleType>
    </xs:attribute>
    <xs:attribute name="RepresentativeName" type="xs:string"/>
    <xs:attribute name="RepresentativeRelationship" type="xs:string"/>
    <xs:attribute name="Witness" type="xs:string"/>
    <xs:attribute name="ObtainedBy" type="xs:string" use="required"/>
    <xs:attribute name="ObtainedAt" type="xs:dateTime" use="required"/>
    <xs:attribute name="Kind" use="required">
      <xs:simpleType>
        <xs:restriction base="xs:string">
          <xs:enumeration value="initial"/><xs:enumeration value="reconsent"/>
          <xs:enumeration value="regained_capacity"/>
        </xs:restriction>
      </xs:simpleType>
    </xs:attribute>
    <xs:attribute name="Decision" use="required">
      <xs:simpleType>
        <xs:restriction base="xs:string">
          <xs:enumeration value="consent"/><xs:enumeration value="refuse"/><xs:enumeration value="continue"/>
          <xs:enumeration value="withdraw"/>
        </xs:restriction>
      </xs:simpleType>
    </xs:attribute>
    <xs:attribute name="RecordedAt" type="xs:dateTime" use="required"/>
    <xs:attribute name="RecordedBy" type="xs:string" use="required"/>
    <xs:attributeGroup ref="tw:Assent"/>
  </xs:complexType>
  <xs:element name="Screening">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="odm:AuditRecord" minOccurs="0"/>
        <xs:element name="ScreeningValues" type="xs:string"/>
        <xs:element name="Consent" minOccurs="0" maxOccurs="unbounded" type="tw:ConsentRecord"/>
        <xs:element ref="tw:History" minOccurs="0"/>
      </xs:sequence>
      <xs:attribute name="ScreeningNumber" type="xs:string" use="required"/>
      <xs:attribute name="ScreenedOn" type="xs:date" use="required"/>
      <xs:attribute name="NonEnrolmentReason" type="xs:string"/>
      <xs:attribute name="NonEnrolmentText" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="DsmbDecision">
    <xs:complexType>
      <xs:attribute name="Decision" use="required">
        <xs:simpleType>
          <xs:restriction base="xs:string">
            <xs:enumeration value="resume"/><xs:enumeration value="pause"/><xs:enumeration value="stop"/>
          </xs:restriction>
        </xs:simpleType>
      </xs:attribute>
      <xs:attribute name="RelatedSaes" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="DecidedAt" type="xs:dateTime" use="required"/>
      <xs:attribute name="DecidedBy" type="xs:string" use="required"/>
    </xs:complexType>
  </xs:element>
  <xs:simpleType name="yesNo">
    <xs:restriction base="xs:string"><xs:enumeration value="Yes"/><xs:enumeration value="No"/></xs:restriction>
  </xs:simpleType>
  <xs:element name="TrialLock">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="odm:AuditRecord" minOccurs="0"/>
      </xs:sequence>
      <xs:attribute name="Locked" type="tw:yesNo" use="required"/>
      <xs:attribute name="At" type="xs:dateTime" use="required"/>
      <xs:attribute name="By" type="xs:string" use="required"/>
      <xs:attribute name="Reason" type="xs:string" use="required"/>
      <xs:attribute name="OpenBlockers" type="xs:positiveInteger"/>
      <xs:attribute name="Withheld" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="SoftLock">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="odm:AuditRecord" minOccurs="0"/>
      </xs:sequence>
      <xs:attribute name="Site" type="xs:string"/>
      <xs:attribute name="Locked" type="tw:yesNo" use="required"/>
      <xs:attribute name="At" type="xs:dateTime" use="required"/>
      <xs:attribute name="By" type="xs:string" use="required"/>
      <xs:attribute name="Reason" type="xs:string" use="required"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""

_ODM_XSD = """<?xml version="1.0" encoding="UTF-8"?>
<!-- CDISC ODM 1.3.2 with trialwright's vendor extension, redefined the way Define-XML extends ODM.
     CDISC's ODM 1.3.2 schema files (ODM1-3-2-foundation.xsd, xml.xsd, xmldsig-core-schema.xsd) are
     read from {where}. -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{odm}" xmlns="{odm}" xmlns:tw="{tw}"
           elementFormDefault="qualified" attributeFormDefault="unqualified">
  <xs:import namespace="http://www.w3.org/XML/1998/namespace" schemaLocation="{odm_dir}xml.xsd"/>
  <xs:import namespace="http://www.w3.org/2000/09/xmldsig#" schemaLocation="{odm_dir}xmldsig-core-schema.xsd"/>
  <xs:import namespace="{tw}" schemaLocation="{ns_file}"/>
  <xs:redefine schemaLocation="{odm_dir}ODM1-3-2-foundation.xsd">
{groups}
  </xs:redefine>
</xs:schema>
"""

_EXTENDED = {"ClinicalData": "DsmbDecision", "SubjectData": "Enrolment", "StudyEventData": "Visit", "FormData": "Form",
             "ItemGroupData": "LogEntry", "ItemData": "StoredValue", "AuditRecord": "Action"}  # fmt: skip
#: Where data queries go (any number, after the element's other extension: ``trialwright.exports.odm.queries``).
_QUERIED = frozenset({"SubjectData", "ItemGroupData"})
#: Further extension elements a parent may hold, each optional, after the one above and before the queries (an
#: adverse event's item group; a value's or an element's earlier audit records, ``trialwright.exports.odm.history``
#: and ``element_history``).
_ALSO = {"ItemGroupData": ("AdverseEvent", "History"), "ItemData": ("History",), "SubjectData": ("History",),
         "StudyEventData": ("History",), "FormData": ("History",)}  # fmt: skip
#: Extension elements a parent may hold any number of, after those above (values removed: ``element_history``; a
#: participant's soft locks, and the trial lock and the sites' soft locks after the DSMB's decisions: ``locks``).
_MANY = {"ItemGroupData": ("RemovedItemData",), "SubjectData": ("SoftLock",), "ClinicalData": ("TrialLock", "SoftLock")}
#: Extension elements a parent may hold any number of (the DSMB's decisions, after the participants).
_REPEATED = frozenset({"ClinicalData"})
#: Extension elements a parent may hold any number of before the one of ``_EXTENDED`` (the screenings never enrolled
#: with their consent records, before the DSMB's decisions: ``trialwright.exports.odm.consents``).
_FIRST = {"ClinicalData": "Screening"}


def extension_schema(folder: Path, odm_schema_dir: Path | None = None) -> Path:
    """Write the extension's XSD (``NAMESPACE_SCHEMA``) and ODM 1.3.2 redefined to admit it (``EXTENDED_SCHEMA``)
    into ``folder``; returns the file to validate with.

    ``odm_schema_dir`` holds CDISC's ODM 1.3.2 schema (``ODM1-3-2-foundation.xsd``, ``xml.xsd``,
    ``xmldsig-core-schema.xsd``); None (what an export writes) names them relative to ``folder``, where a reader
    puts CDISC's files. The files written do not depend on anything but this module: every export writes the same.
    """
    groups = "\n".join(
        f'    <xs:group name="{parent}ElementExtension"><xs:sequence>'
        f'<xs:group ref="{parent}ElementExtension"/>'
        + (f'<xs:element ref="tw:{_FIRST[parent]}" minOccurs="0" maxOccurs="unbounded"/>' if parent in _FIRST else "")
        + f'<xs:element ref="tw:{element}" minOccurs="0"'
        + (' maxOccurs="unbounded"/>' if parent in _REPEATED else "/>")
        + "".join(f'<xs:element ref="tw:{also}" minOccurs="0"/>' for also in _ALSO.get(parent, ()))
        + "".join(f'<xs:element ref="tw:{m}" minOccurs="0" maxOccurs="unbounded"/>' for m in _MANY.get(parent, ()))
        + ('<xs:element ref="tw:Query" minOccurs="0" maxOccurs="unbounded"/>' if parent in _QUERIED else "")
        + "</xs:sequence></xs:group>"
        for parent, element in _EXTENDED.items()
    )
    (folder / NAMESPACE_SCHEMA).write_text(_TW_XSD.format(tw=TW_NS, odm=ODM_NS), encoding="utf-8", newline="\n")
    root = folder / EXTENDED_SCHEMA
    if odm_schema_dir is None:
        odm_dir, where = "", "this schema's folder (put them beside it)"
    else:
        odm_dir = odm_schema_dir.resolve().as_uri() + "/"
        where = odm_dir
    text = _ODM_XSD.format(odm=ODM_NS, tw=TW_NS, odm_dir=odm_dir, groups=groups, ns_file=NAMESPACE_SCHEMA, where=where)
    root.write_text(text, encoding="utf-8", newline="\n")
    return root
