"""Every export format the data manager and the statisticians may choose, by name.

The IPD package is not listed: it is issued only against an approved data access request
(``trialwright.services.sharing.issue_ipd``).
"""

from __future__ import annotations

from trialwright.exports.base import Exporter
from trialwright.exports.codebook import CodebookExporter
from trialwright.exports.dataset_json import DatasetJsonExporter
from trialwright.exports.fhir import FhirExporter
from trialwright.exports.odm import OdmExporter
from trialwright.exports.sas import SasExporter
from trialwright.exports.sdtm import SdtmExporter
from trialwright.exports.spss import SpssExporter
from trialwright.exports.stata import StataExporter
from trialwright.exports.tabular import CsvExporter, ParquetExporter

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
        DatasetJsonExporter,
        OdmExporter,
        FhirExporter,
    )
}
