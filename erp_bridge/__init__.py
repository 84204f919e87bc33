"""ERP bridge: expected records in (CSV export for now), results back out."""

from erp_bridge.csv_source import ErpFileError, ExpectedRecord, load_erp_csv

__all__ = ["ErpFileError", "ExpectedRecord", "load_erp_csv"]
