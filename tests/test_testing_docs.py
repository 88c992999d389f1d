"""docs/tutorials/conformance.md lists every diagnosis code (its snippets are run by
tests/test_docs_snippets.py, like every page's)."""
import re
from pathlib import Path

from rpmref.testing import DIAGNOSES

PAGE = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "conformance.md"


def test_the_table_lists_every_diagnosis_code():
    codes = set(re.findall(r"^\| `([a-z0-9-]+)` \|", PAGE.read_text(), flags=re.M))
    assert codes == set(DIAGNOSES)
