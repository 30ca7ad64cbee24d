"""Documents that describe the code, checked against it: the local stage's banner and the e2e suites.

``docs/local-stage.md`` shows what ``make run`` prints and lists the e2e suites. Both drifted
once (a banner with 2 functions when the app has 20; a list of suites long outgrown), so each is
now compared with what the code produces. On a mismatch the test prints the text the document
should hold: paste it in (``python -m tests.unit.test_docs_drift`` prints both sections).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL_STAGE_DOC = ROOT / "docs" / "local-stage.md"
E2E_DIR = ROOT / "tests" / "e2e"
E2E_START = "<!-- e2e suites: generated from each module's docstring, checked by tests/unit/test_docs_drift.py -->"
E2E_END = "<!-- end of e2e suites -->"

pytestmark = pytest.mark.unit


def expected_banner() -> str:
    """``localstage.stage.banner`` for the app's functions, on the default ports and settings."""
    import app as application
    from localstage.functions import discover_functions, load_chalice_config
    from localstage.iam.stage import IamOptions
    from localstage.stage import STAGE, banner

    functions = discover_functions(application.app, STAGE, load_chalice_config(ROOT))
    stage = SimpleNamespace(
        functions=functions,
        timings={"http": 3.9},
        api_url="http://127.0.0.1:8000",
        aws=SimpleNamespace(endpoint="http://127.0.0.1:4566"),
        options=SimpleNamespace(iam=IamOptions()),
        untested_versions={},
    )
    return "$ make run" + banner(stage).rstrip("\n")  # type: ignore[arg-type]


def documented_banner(doc: str) -> str:
    found = re.search(r"```\n(\$ make run\n.*?)\n```", doc, re.DOTALL)
    assert found, "docs/local-stage.md shows no `$ make run` block"
    return found.group(1)


def expected_e2e_section() -> str:
    rows = ["| suite | what it shows |", "|---|---|"]
    for module in sorted(E2E_DIR.glob("test_*.py")):
        docstring = ast.get_docstring(ast.parse(module.read_text())) or ""
        summary = docstring.strip().splitlines()[0] if docstring.strip() else ""
        escaped = summary.replace("|", r"\|")
        rows.append(f"| `tests/e2e/{module.name}` | {escaped} |")
    return "\n".join(rows)


def documented_e2e_section(doc: str) -> str:
    assert E2E_START in doc and E2E_END in doc, "docs/local-stage.md lost its generated e2e section markers"
    return doc.split(E2E_START, 1)[1].split(E2E_END, 1)[0].strip()


def test_given_the_apps_functions_when_the_stage_starts_then_the_documented_banner_is_the_one_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the default admin (the banner shows it)
    monkeypatch.delenv("LOCAL_ADMIN_EMAIL", raising=False)
    monkeypatch.delenv("LOCAL_ADMIN_PASSWORD", raising=False)
    # WHEN the banner is rendered for the app's functions
    expected = expected_banner()
    # THEN docs/local-stage.md shows exactly it, every function included
    assert documented_banner(LOCAL_STAGE_DOC.read_text()) == expected, f"docs/local-stage.md should show:\n{expected}"
    assert expected.count("    ecommerce-backend-local") >= 20


def test_given_the_e2e_modules_when_listed_then_the_documented_suites_are_all_of_them() -> None:
    # GIVEN every tests/e2e/test_*.py WHEN listed with its docstring's first line
    expected = expected_e2e_section()
    # THEN the generated section of docs/local-stage.md is exactly that list
    assert documented_e2e_section(LOCAL_STAGE_DOC.read_text()) == expected, (
        f"docs/local-stage.md should hold:\n{expected}"
    )


if __name__ == "__main__":
    print(expected_banner(), expected_e2e_section(), sep="\n\n")
