from __future__ import annotations

import pytest

from premigrate.model.versions import Version


class TestVersionOrder:
    @pytest.mark.parametrize(
        ("smaller", "larger"),
        [
            pytest.param("2", "10", id="numeric-not-lexical"),
            pytest.param("1.9", "1.10", id="dotted-parts-numeric"),
            pytest.param("1", "1.1", id="extra-part-is-larger"),
            pytest.param("20260113155307", "20260113155308", id="timestamps"),
            pytest.param("9", "20260113155307", id="sequence-before-timestamp"),
        ],
    )
    def test_orders_numerically(self, smaller: str, larger: str) -> None:
        """Versions compare as tuples of integers, not as strings."""
        assert Version.parse(smaller) < Version.parse(larger)

    @pytest.mark.parametrize("text", ["001", "1", "1.0", "1_0", "01.00.0"])
    def test_equal_spellings(self, text: str) -> None:
        """Leading zeros and trailing zero parts do not make a different version."""
        assert Version.parse("1") == Version.parse(text)
        assert "1" == str(Version.parse(text))

    def test_keeps_spelling_out_of_identity(self) -> None:
        """The file's spelling is kept for display but not compared."""
        assert "001" == Version.parse("001").text

    @pytest.mark.parametrize("text", ["", "a1", "1..2", "1.", "-1", "1a"])
    def test_rejects_non_versions(self, text: str) -> None:
        """Anything but digits separated by dots or underscores is not a version."""
        with pytest.raises(ValueError):
            Version.parse(text)

    def test_zero(self) -> None:
        """Version 0 prints as 0, not as an empty string."""
        assert "0" == str(Version.parse("000"))
