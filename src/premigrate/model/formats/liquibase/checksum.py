"""A changeset's checksum, as Liquibase computes it (ChecksumVersion 9)."""

from __future__ import annotations

import hashlib
import unicodedata

from premigrate.model.formats.liquibase.patterns import CHECKSUM_VERSION


# -- checksum (ChecksumVersion 9) ---------------------------------------------------------------------------------

def checksum(sql: str | None) -> str:
    """The changeset's MD5SUM: MD5 over "9:<md5 of the SQL's UTF-8 bytes without spaces, tabs, CR, LF>:"."""
    data = (sql or "").encode("utf-8")
    change = hashlib.md5(data.translate(None, b" \t\r\n")).hexdigest()
    outer = unicodedata.normalize("NFC", f"{CHECKSUM_VERSION}:{change}:".replace("\ufffd", ""))
    return f"{CHECKSUM_VERSION}:{hashlib.md5(outer.encode('utf-8')).hexdigest()}"
