"""model/formats/base.read_text: a migration file's bytes read to the end, then checked (size, NUL, UTF-8) and
normalized (BOM, CRLF)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from premigrate.errors import MigrationFileError
from premigrate.model.formats import base


@pytest.mark.parametrize("data", [b"", b"SELECT 1;\n", b"\xef\xbb\xbfSELECT 1;\r\nSELECT 2;\r\n", b"x" * 200_000])
def test_a_file_is_read_whole(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "1_x.sql"
    path.write_bytes(data)
    assert data.decode().removeprefix("\ufeff").replace("\r\n", "\n") == base.read_text(path, "1_x.sql")


def test_a_file_longer_than_its_size_said_is_read_to_the_end() -> None:
    """/proc files report size 0 and hold text: the file is read to its end, not to the size asked before (a file
    that grows between the two is read the same way)."""
    with open("/proc/version", "rb") as file:
        expected = file.read().decode()
    assert expected and 0 == os.stat("/proc/version").st_size
    assert expected == base.read_text(Path("/proc/version"), "version")


def test_a_file_over_the_limit_once_read_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose size said it was within the limit and whose text is not (it grew) is refused once read."""
    monkeypatch.setattr(base, "MAX_FILE_BYTES", 10)
    with pytest.raises(MigrationFileError, match="version: over the 0 MiB limit"):
        base.read_text(Path("/proc/version"), "version")  # 0 bytes by its size, more once read


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match=r"1_x.sql: cannot read it \(no such file or directory\)"):
        base.read_text(tmp_path / "1_x.sql", "1_x.sql")
