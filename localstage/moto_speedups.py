"""Five of moto's per-request costs, paid in proportion to the data instead of several times over.

All five were found in py-spy profiles of the end-to-end benchmark (docs/benchmarks.md, "End to
end"), and each replaces moto's code with a shorter path to the same answer; the tests in
tests/unit/test_localstage_moto_speedups.py and test_localstage_moto_speedups_writes.py compare the
answers with moto's own.

- **DynamoDB's attribute values.** moto 5.2 serialises every response through a generic, model-driven
  serializer. For each attribute value of each item it walks the ten members of the
  ``AttributeValue`` union (``S``, ``N``, ``B``, ... ``BOOL``), asking a chain of alias providers
  for each member's possible keys: about a tenth of the stage's busy time under load went there.
  An attribute value reaches the serializer as a plain dict holding only union members
  (``moto.dynamodb.models.utilities.dynamo_to_dict``), so it is converted directly: the same
  members in the same order, strings as ``str``, blobs base64-encoded, lists and maps recursively.
  Anything else (an object, a dict with another key) goes through moto's serializer as before.
- **DynamoDB's update expressions.** ``UpdateItem`` parses its expression into a tree of moto's ``Node``
  objects and its validator starts by deep-copying that tree (``copy.deepcopy``: ``__reduce_ex__``
  and ``_reconstruct`` for each node: 0.2 to 0.3 ms for an expression of five actions, up to 8 % of
  the stage's busy time in one profile). The copy is made by walking the nodes' attributes instead,
  with ``deepcopy``'s memo (so the parent links of the copy point into the copy, as ``deepcopy`` makes
  them); any value that is not a node, a list or an immutable scalar is copied by ``copy.deepcopy``
  as before. moto gives its own ``DynamoType`` and ``Item`` a hand-written ``__deepcopy__`` for the
  same reason.
- **SQS's retention check.** ``ReceiveMessage`` asks, for each message it looks at, whether the
  message is within the queue's retention period, and moto answers by computing every attribute of
  the queue (``Queue.attributes``), which counts the visible, delayed and in-flight messages, three
  times. So a receive cost the square of the queue's length. Here the check reads the one attribute.
- **DynamoDB's transaction rollback.** Before writing, ``TransactWriteItems`` deep-copies every table
  the transaction names, every item of it, so that a cancelled transaction can put the copy back: a
  cost that grows with the tables (each order adds rows to the orders and reservations tables; 8 %
  of the stage's busy time after 150 orders). A transaction can only change the items whose keys it
  names, and the table's stream records. So the copy moto asks for is, during the transaction, an
  undo record of those: the hash-key buckets it names (deep-copied, present or not) and the stream's
  records; moto's rollback puts it in place of the table, and it is then applied to the table
  itself. A transaction whose keys cannot be read (a missing key attribute) gets moto's full copy.
- **DynamoDB's update expressions, parsed.** ``UpdateItem`` tokenizes and parses its expression twice
  (request handler, then backend): about a third of an update's cost, for the handful of expressions
  an app sends again and again. The parse tree is only read (``find_clauses``) or deep-copied before
  it is processed (``Validator.__init__``), so one tree per expression text is kept (``lru_cache``);
  an expression that does not parse raises each time, as before.
"""

from __future__ import annotations

import base64
import copy
import functools
import threading
from collections.abc import Callable
from typing import Any

from localstage.patches import Patches

ATTRIBUTE_VALUE = "AttributeValue"  # the union shape of DynamoDB's (and DynamoDB Streams') item values
SERVICES = frozenset({"dynamodb", "dynamodbstreams"})


def _blob(value: str | bytes) -> str:
    """As moto's ``ResponseSerializer._base64``."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return base64.b64encode(value).strip().decode("utf-8")


def _string(value: Any) -> Any:
    """As moto's ``BaseJSONSerializer._serialize_type_string`` (enums aside: none in an item)."""
    return str(value) if value not in [None, {}, []] else value


class _NotPlain(Exception):
    """A value the direct path does not write (not a plain dict of union members): moto's serializer does."""


def attribute_value(value: Any, shape: Any) -> Any:
    """A value of ``shape`` (an ``AttributeValue`` and what it holds) as moto's serializer writes it.

    Raises ``_NotPlain`` for anything but dicts holding only the structure's members and lists where
    the model has lists. Structures drop their ``None`` members and maps their ``None`` attribute
    values; a list keeps a ``None`` item, as moto's serializer does.
    """
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict) or not value.keys() <= shape.members.keys():
            raise _NotPlain
        return {
            name: attribute_value(value[name], member)
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if kind == "list":
        if not isinstance(value, list):
            raise _NotPlain
        of_structures = shape.member.type_name == "structure"
        return [None if item is None and of_structures else attribute_value(item, shape.member) for item in value]
    if kind == "map":
        if not isinstance(value, dict):
            raise _NotPlain
        of_structures = shape.value.type_name == "structure"
        return {
            key: attribute_value(item, shape.value)
            for key, item in value.items()
            if not (item is None and of_structures)
        }
    if kind == "string":
        return _string(value)
    if kind == "blob":
        return _blob(value)
    return value  # boolean: as moto's _default_serialize


def _direct_attribute_values(original: Callable[..., Any]) -> Callable[..., Any]:
    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (
            key
            and shape.name == ATTRIBUTE_VALUE
            and value is not None
            and self.service_model.service_name in SERVICES
            and not getattr(self._value_picker, "response_transformers", None)  # none registered for DynamoDB
        ):
            try:
                serialized[self.get_serialized_name(shape, key)] = attribute_value(value, shape)
            except _NotPlain:  # raised before anything is written: moto's serializer writes it, as before
                original(self, serialized, value, shape, key)
            return
        original(self, serialized, value, shape, key)

    serialize_structure.__wrapped__ = original  # type: ignore[attr-defined]
    return serialize_structure


def _retention_from_the_attribute(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.core.utils import unix_time

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        if retention_period is None:  # moto's lookup finds no such attribute then
            raise KeyError("MessageRetentionPeriod")
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    is_message_valid_based_on_retention_period.__wrapped__ = original  # type: ignore[attr-defined]
    return is_message_valid_based_on_retention_period


_SCALARS = (str, int, float, bool, type(None))


def tree_copy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy(value)`` for a tree of moto's expression nodes, without the pickle protocol."""
    if memo is None:
        memo = {}
    if isinstance(value, _SCALARS):
        return value
    found = memo.get(id(value))
    if found is not None:
        return found
    cls = type(value)
    if cls is list:
        items: list[Any] = []
        memo[id(value)] = items
        items.extend([tree_copy(item, memo) for item in value])
        return items
    plain = _PLAIN_NODES.get(cls)
    if plain is None:
        plain = _PLAIN_NODES[cls] = _plain_node(cls)
    if plain:
        node = object.__new__(cls)
        memo[id(value)] = node
        node.__dict__.update({name: tree_copy(item, memo) for name, item in value.__dict__.items()})
        return node
    return copy.deepcopy(value, memo)


_PLAIN_NODES: dict[type, bool] = {}


def _plain_node(cls: type) -> bool:
    """A node class whose instances ``deepcopy`` copies as their ``__dict__``: no copy hook of its own."""
    from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]

    hooks = ("__deepcopy__", "__reduce_ex__", "__reduce__", "__getstate__", "__setstate__", "__slots__", "__new__")
    own = (klass for klass in cls.__mro__ if klass is not object)
    return issubclass(cls, Node) and not any(hook in vars(klass) for klass in own for hook in hooks)


_journal = threading.local()  # the buckets the running transaction on this thread names, by table


class TableUndo:
    """What a transaction can change in one table, as it was: its named hash buckets and stream records.

    Stands where moto's deep copy of the table would; attributes read through it are the table's, so a
    reader that finds it in the backend's tables between moto's rollback and ``restored`` sees the table.
    """

    def __init__(self, table: Any, hash_keys: set[Any]) -> None:
        self.table = table
        self.buckets = {key: (key in table.items, copy.deepcopy(table.items.get(key))) for key in hash_keys}
        shard = table.stream_shard
        self.shard, self.records = shard, (list(shard.items) if shard is not None else None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.table, name)

    def restored(self) -> Any:
        """The table, its named buckets and stream records as they were when this was made."""
        for key, (present, bucket) in self.buckets.items():
            if present:
                self.table.items[key] = bucket
            else:
                self.table.items.pop(key, None)
        self.table.stream_shard = self.shard
        if self.shard is not None and self.records is not None:
            self.shard.items[:] = self.records
        return self.table


def named_buckets(backend: Any, transact_items: Any) -> dict[str, set[Any]] | None:
    """The hash keys each table's operations name, or None when one cannot be read (moto's copy then)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    buckets: dict[str, set[Any]] = {}
    for entry in transact_items:
        if not isinstance(entry, dict):
            return None
        for kind, operation in entry.items():
            table = backend.tables.get(operation.get("TableName")) if isinstance(operation, dict) else None
            if table is None:
                continue  # moto copies no table it does not have
            source = operation.get("Item" if kind == "Put" else "Key")
            value = source.get(table.hash_key_attr) if isinstance(source, dict) else None
            if not isinstance(value, dict):
                return None
            buckets.setdefault(table.name, set()).add(DynamoType(value))
    return buckets


class _CopyForTransactions:
    """``moto.dynamodb.models``' ``copy`` module: a table copied during a journalled transaction is a ``TableUndo``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        named = getattr(_journal, "buckets", None)
        if named is not None and isinstance(value, Table) and value.name in named:
            made: dict[str, TableUndo] = _journal.made  # moto copies a table once per operation naming it
            if value.name not in made:
                made[value.name] = TableUndo(value, named[value.name])
            return made[value.name]
        return copy.deepcopy(value, memo)


def _journalled(original: Callable[..., Any]) -> Callable[..., Any]:
    from localstage.moto_patches import dynamodb_write_lock

    def transact_write_items(self: Any, transact_items: Any) -> Any:
        with dynamodb_write_lock():  # the undo is applied before another thread may write
            made: dict[str, TableUndo] = {}
            _journal.buckets, _journal.made = named_buckets(self, transact_items), made
            try:
                return original(self, transact_items)
            finally:
                _journal.buckets, _journal.made = None, {}
                for name, undo in made.items():
                    if self.tables.get(name) is undo:  # moto's rollback put it there
                        self.tables[name] = undo.restored()

    transact_write_items.__wrapped__ = original  # type: ignore[attr-defined]
    return transact_write_items


def _parsed_once(original: Callable[..., Any]) -> Any:
    """``UpdateExpressionParser.make`` (a classmethod, bound here) with one tree kept per expression text."""
    return staticmethod(functools.lru_cache(maxsize=1024)(original))


def speed_up_moto(patches: Patches) -> None:
    """Serialise DynamoDB attribute values directly, copy update expressions without pickling, check SQS
    retention from the one attribute, undo a cancelled transaction from what it names, and parse each update
    expression once."""
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
    from moto.sqs.models import SQSBackend

    patches.wrap("moto", BaseJSONSerializer, "_serialize_type_structure", _direct_attribute_values)
    # Validator.__init__ copies its tree with it; list_append copies a DynamoType, handed to copy.deepcopy.
    patches.set("moto", validators, "deepcopy", tree_copy)
    patches.wrap("moto", SQSBackend, "is_message_valid_based_on_retention_period", _retention_from_the_attribute)
    patches.set("moto", dynamodb_models, "copy", _CopyForTransactions())
    patches.wrap("moto", UpdateExpressionParser, "make", _parsed_once)
    patches.wrap("moto", DynamoDBBackend, "transact_write_items", _journalled)
