"""Every export format the data manager and the statisticians may choose, by name.

The IPD package is not listed: it is issued only against an approved data access request
(``trialkit.services.sharing.issue_ipd``).
"""

from __future__ import annotations

from trialkit.exports.base import Exporter
from trialkit.exports.codebook import CodebookExporter
from trialkit.exports.fhir import FhirExporter
from trialkit.exports.odm import OdmExporter
from trialkit.exports.sdtm import SdtmExporter
from trialkit.exports.tabular import CsvExporter, ParquetExporter, SasExporter, SpssExporter, StataExporter

__all__ = ["FORMATS"]

FORMATS: dict[str, type[Exporter]] = {
    cls.name: cls
    for cls in (
        CsvExporter,
        ParquetExporter,
        StataExporter,
        SpssExporter,
        SasExporter,
        CodebookExporter,
        SdtmExporter,
        OdmExporter,
        FhirExporter,
    )
}
