"""checkov's command line for several scans, importing checkov once and building its JSONPath tables once.

Run with checkov's interpreter (``.venv/checkov``), its own directory kept off ``sys.path`` (``-P``), by
``infra.checks``, with a JSON file of scans, each checkov's arguments and where its output goes:

    .venv/checkov/bin/python -P infra/checkov_run.py scans.json
    # scans.json: [{"argv": ["-f", "cloudformation.json", ...], "stdout": "scan-0.json"}, ...]

It prints each scan's exit status, a JSON list. Two costs of checkov's own ``bin/checkov`` go:

- Importing checkov, about 2.5 s a process. It is imported once; each scan then runs in a process
  forked from that one, so each starts from the state a fresh ``checkov`` has when its ``main``
  begins, and one scan's state never reaches the next.
- checkov's CloudFormation graph parses JSONPath expressions with ``bc_jsonpath_ng``, whose parser
  asks ply for its LALR tables on every ``parse()``. ply reads them from the parser's ``tabmodule``
  when that module exists and its grammar signature matches; ``bc_jsonpath_ng`` names one but never
  writes it (``write_tables=0``), so ply built the tables 57 times a scan of ``make package``'s
  template, about 2 s. Here each parser's tables are built once, written by ply's own writer to a
  scratch directory, and registered under the name ply imports. The parsers are the same: ply
  rebuilds tables whose signature does not match (another ``bc_jsonpath_ng``'s grammar), as before.

It imports checkov's packages only: nothing of this project, whose dependencies that virtualenv lacks.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import tempfile
import traceback
import warnings
from pathlib import Path
from typing import Any, NoReturn

import bc_jsonpath_ng.parser
import ply.yacc
from bc_jsonpath_ng.ext.parser import ExtentedJsonPathParser

START = "jsonpath"  # the start symbol JsonPathParser.parse gives parse_token_stream


def table_module(parser: bc_jsonpath_ng.parser.JsonPathParser) -> str:
    """The module ply imports the tables of ``parser`` from: ``parse_token_stream``'s ``tabmodule``,
    which ply puts in the package of the parser's class."""
    tabmodule = f"{Path(bc_jsonpath_ng.parser.__file__).stem}_{START}_parsetab"
    package = sys.modules[type(parser).__module__].__package__
    return f"{package}.{tabmodule}" if package else tabmodule


def preload_parse_tables() -> list[str]:
    """Build the tables of ``bc_jsonpath_ng``'s two parsers and register them where ply looks; return their names."""
    loaded = []
    with tempfile.TemporaryDirectory() as scratch:
        for parser in (bc_jsonpath_ng.parser.JsonPathParser(), ExtentedJsonPathParser()):
            name = table_module(parser)
            ply.yacc.yacc(
                module=parser,
                start=START,
                tabmodule=name,
                outputdir=scratch,
                write_tables=True,
                debug=False,
                errorlog=ply.yacc.NullLogger(),
            )
            spec = importlib.util.spec_from_file_location(name, Path(scratch) / f"{name.rsplit('.', 1)[-1]}.py")
            if spec is None or spec.loader is None:
                continue  # nothing written: ply builds these tables on each parse, as without this module
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[name] = module
            loaded.append(name)
    return loaded


def exit_status(code: Any) -> int:
    """The status the interpreter exits with for ``sys.exit(code)``, as ``bin/checkov`` ends."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _scan(argv: list[str], stdout: str) -> NoReturn:
    """In a forked process: what ``bin/checkov`` does with ``argv``, its standard output into ``stdout``."""
    from checkov.main import Checkov

    descriptor = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(descriptor, 1)
    os.close(descriptor)
    sys.argv = [str(Path(sys.executable).with_name("checkov")), *argv]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=SyntaxWarning)
            status = exit_status(Checkov(argv).run())
    except SystemExit as exc:
        status = exit_status(exc.code)
    except BaseException:  # what the interpreter prints before it exits with 1
        traceback.print_exc()
        status = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # not through the parent's frames and exit handlers


def main(argv: list[str]) -> int:
    scans = json.loads(Path(argv[0]).read_text())
    preload_parse_tables()
    import checkov.main  # noqa: F401 - once, before the forks that share it

    statuses = []
    for scan in scans:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _scan(list(scan["argv"]), str(scan["stdout"]))
        statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    print(json.dumps(statuses))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
