"""docs/tutorials/conformance.md: its snippets run and print what the page shows, and its
table lists every diagnosis code."""
import doctest
import re
from pathlib import Path

from rpmref.testing import DIAGNOSES

PAGE = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "conformance.md"


def test_the_snippets_print_what_the_page_shows():
    blocks = re.findall(r"```pycon\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) >= 8
    test = doctest.DocTestParser().get_doctest("\n".join(blocks), {}, PAGE.name, str(PAGE), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries >= 20


def test_the_table_lists_every_diagnosis_code():
    codes = set(re.findall(r"^\| `([a-z0-9-]+)` \|", PAGE.read_text(), flags=re.M))
    assert codes == set(DIAGNOSES)
