"""Corrections to moto that the local stage needs to behave like AWS under concurrency, and to keep up.

moto's DynamoDB backend is not thread-safe: a cancelled ``TransactWriteItems``
restores a copy of the whole table, undoing writes other threads made meanwhile.
DynamoDB applies each write atomically, and the stage serves HTTP requests, SQS
batches and workflow tasks on many threads at once (N concurrent orders for the
last items in stock must leave exactly 0, never a resurrected count). One lock
around moto's write operations restores per-write atomicity. Reads need it too: moto's
``update_item`` applies an update expression to the stored item in place, one action at a time, and
its ``GetItem``/``Query``/``Scan`` handlers serialise the live item outside any lock, so a read
racing a write could return half an update (an order whose status moved but whose other
attributes had not), which DynamoDB never does. Each of moto's item request handlers therefore
runs whole under the same lock, from its request to its serialised answer.

Two costs moto pays on every request, which the stage's load makes visible (a py-spy profile of the
end-to-end benchmark: about a fifth of the stage's busy time), are paid once instead:

- the server's dispatcher lists moto's package directory (``os.listdir`` and ~150 ``isdir``) for
  every request, under its global lock, to ask whether the host names a backend;
- Step Functions' interpreter builds a new JSONPath parser (ply parse tables) for every path it
  evaluates, several per state.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler

from localstage.patches import Patches

# BatchWriteItem is not here: moto's handler calls put_item and delete_item per request (each locked),
# and DynamoDB does not make a batch atomic either (its DynamoDBBackend.batch_write_item is a stub).
WRITE_OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items")
# The request handlers (parse, call the backend, serialise the answer) that read a live item outside the
# backend: the reads, and update_item, whose ReturnValues answer is the stored item serialised afterwards.
ITEM_HANDLERS = ("get_item", "batch_get_item", "query", "scan", "transact_get_items", "update_item")
_lock = threading.RLock()


def _locked(original: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return original(*args, **kwargs)

    call.__wrapped__ = original  # type: ignore[attr-defined]
    return call


def dynamodb_write_lock() -> threading.RLock:
    """The lock the stage's DynamoDB writes and item handlers hold (re-entrant)."""
    return _lock


def serialise_dynamodb_writes(patches: Patches) -> None:
    """One lock around moto's DynamoDB writes and item request handlers; a renamed one fails here (PatchTargetError)."""
    for name in WRITE_OPERATIONS:
        patches.wrap("moto", DynamoDBBackend, name, _locked)
    for name in ITEM_HANDLERS:
        patches.wrap("moto", DynamoHandler, name, _locked)


@contextmanager
def serialised_dynamodb_writes() -> Iterator[None]:
    """The lock for the duration of a block (tests that run moto in-process)."""
    with Patches() as patches:
        serialise_dynamodb_writes(patches)
        yield


def cache_moto_lookups(patches: Patches) -> None:
    """Compute moto's module list once, reuse JSONPath parsers, and look up existing accounts' backends
    without moto's global lock (undone with ``patches``)."""
    import moto.backends
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    modules = frozenset(moto.backends.list_of_moto_modules())  # the installed package does not change
    patches.set("moto", moto.backends, "list_of_moto_modules", lambda: modules)
    for module in (json_path, result_path):
        # Parsed expressions are immutable trees, safe to share between executions and threads.
        patches.wrap("moto", module, "parse", functools.lru_cache(maxsize=1024))
    # moto's EventBridge imports this ``parse`` inside every delivery (EventTemplateParser.parse, even
    # for a target without an input transformer) and jsonpath-ng builds a yacc parser per call: about
    # a twelfth of the stage's busy time at 1.5 orders/s before this (docs/benchmarks.md).
    import jsonpath_ng.ext

    patches.wrap("jsonpath-ng", jsonpath_ng.ext, "parse", functools.lru_cache(maxsize=1024))
    # moto's dispatcher lists a response class's methods with inspect.getmembers on every request.
    import moto.core.responses

    patches.wrap("moto", moto.core.responses, "method_names_from_class", functools.lru_cache(maxsize=512))
    # ... and turns the action's name into a method name a character at a time (a pure function).
    patches.wrap("moto", moto.core.responses, "camelcase_to_underscores", functools.lru_cache(maxsize=2048))
    # Every backend lookup (``dynamodb_backends[account]``, several a request) takes moto's global backend
    # lock, copies the account ids and compares the BackendDict with each of the ~200 in use (__eq__).
    from moto.core.base_backend import BackendDict

    patches.wrap("moto", BackendDict, "_create_account_specific_backend", _known_accounts)


def _known_accounts(original: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
    def _create_account_specific_backend(self: Any, account_id: str) -> None:
        # An account present was created, and its BackendDict listed, since the last reset: moto's reset
        # empties every listed BackendDict and then the list, so only a new account needs the lock.
        if dict.__contains__(self, account_id):
            return
        original(self, account_id)

    return _create_account_specific_backend


MAX_DEFINITIONS = 64  # state machine definitions whose parse trees are kept


def _tree_cached(original: Callable[..., Any]) -> Any:
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    kept: dict[str, tuple[Any, Any]] = {}  # definition -> (antlr tree, the shared program or None)
    lock = threading.Lock()

    def parse(definition: str) -> tuple[Any, Any]:
        with lock:
            found = kept.get(definition)
        if found is None:
            program, tree = original(definition)  # a syntax error raises here, every time, as before
            seal_texts(tree)
            shared = program if shareable(program) else None
            with lock:
                if len(kept) >= MAX_DEFINITIONS:
                    kept.pop(next(iter(kept)))
                kept[definition] = (tree, shared)
            return program, tree
        tree, shared = found
        if shared is not None:
            return shared, tree
        return Preprocessor().visit(tree), tree  # a fresh program for each execution of this definition

    return staticmethod(parse)


_PER_EXECUTION_STATE = ("state_map",)  # Map keeps its iteration's workers and run record on components


def shareable(program: Any) -> bool:
    """Whether every execution of ``program`` can evaluate the same components; if so, make it so.

    moto's components keep an execution's state in its ``Environment`` (the retriers' attempt counts and
    backoff in ``env.heap``, keyed by each component's ``heap_key``), not on themselves: the only
    attribute a component sets after it is built is that key, drawn at its first use. Drawn by two
    executions at once it could differ between them, so each key is drawn here, once, before any
    execution shares the program. A Map state keeps its iteration workers and run record on its
    components, so a program with one is built again for each execution, as moto does.
    """
    from moto.stepfunctions.parser.asl.component.component import Component
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    components = list(_components(program, Component))
    if any(any(part in type(c).__module__ for part in _PER_EXECUTION_STATE) for c in components):
        return False
    for component in components:
        if isinstance(component, EvalComponent):
            component.heap_key  # noqa: B018  # drawn now, read by every execution
    return True


def _components(root: Any, kind: type) -> Iterator[Any]:
    """Every ``kind`` reachable from ``root`` through attributes, lists, tuples and dict values."""
    seen: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, list | tuple | set | frozenset):
            pending.extend(node)
        elif isinstance(node, dict):
            pending.extend(node.values())
        elif hasattr(node, "__dict__") and type(node).__module__.startswith("moto.stepfunctions"):
            if isinstance(node, kind):
                yield node
            pending.extend(vars(node).values())


SEALED_TEXT = "_localstage_text"  # a kept tree's node: its getText(), computed once


def seal_texts(tree: Any) -> str:
    """Store each rule node's text on it, computed once bottom-up, and return the root's.

    antlr's ``RuleContext.getText`` concatenates its subtree's tokens on every call, and the
    ``Preprocessor`` asks nodes at every level for theirs: over half of building a program went there
    (16 ms an execution for statemachine.json). A kept tree is never changed again, so its texts are fixed.
    """
    from antlr4.tree.Tree import TerminalNode

    if isinstance(tree, TerminalNode):
        return str(tree.getText())
    text = "".join(seal_texts(child) for child in tree.getChildren()) if tree.getChildCount() else ""
    if hasattr(tree, "__dict__"):  # antlr's own base classes have slots; the generated rule contexts do not
        setattr(tree, SEALED_TEXT, text)
    return text


def _sealed_text(original: Callable[..., Any]) -> Callable[..., Any]:
    def getText(self: Any) -> str:
        text = getattr(self, SEALED_TEXT, None)
        return text if text is not None else str(original(self))

    getText.__wrapped__ = original  # type: ignore[attr-defined]
    return getText


def cache_asl_parse_trees(patches: Patches) -> None:
    """Lex and parse each state machine definition once, not on every execution.

    moto's ``ExecutionWorker`` calls ``AmazonStateLanguageParser.parse(definition)`` for every execution:
    antlr's lexer and parser (pure Python, about a twentieth of the stage's CPU under load), then the
    ``Preprocessor`` that turns the parse tree into evaluation components. The antlr tree is only read
    afterwards, so it is kept per definition text, and the nodes' texts are computed once
    (``seal_texts``). Building the components from the tree was still about 5 % of the stage's CPU
    under load (7 ms an execution), and they keep no execution's state (``shareable``), so one program
    per definition serves every execution; a definition with a Map state gets a program per execution,
    built from the kept tree.
    """
    from antlr4.RuleContext import RuleContext
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    patches.wrap("moto", AmazonStateLanguageParser, "parse", _tree_cached)
    patches.wrap("antlr4-python3-runtime", RuleContext, "getText", _sealed_text)
