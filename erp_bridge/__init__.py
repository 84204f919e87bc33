"""ERP bridge: expected records in, from a drop file (CSV or JSON lines), a SQL database or an
MES push; results go back out through the appliance's outbox."""

from erp_bridge.csv_source import ErpFileError, ExpectedRecord, load_erp_csv
from erp_bridge.files import load_erp_file, load_erp_jsonl, record_from_row
from erp_bridge.sql_source import ErpSourceError, SqlBatch, SqlSource

__all__ = ["ErpFileError", "ErpSourceError", "ExpectedRecord", "SqlBatch", "SqlSource",
           "load_erp_csv", "load_erp_file", "load_erp_jsonl", "record_from_row"]
