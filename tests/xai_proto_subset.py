"""xAI's protobuf messages that providers/xai.py reads, built by the protobuf runtime from
tests/fixtures/xai/billing_subset.proto (a verbatim subset of xai-org/xai-proto).

Tests use them to print proto3 JSON the way real serializers do and to read what a document means,
independently of the parser under test. The .proto is parsed by a regex: flat messages, scalar,
message and `google.protobuf.Timestamp` fields, `repeated` and proto3 `optional` labels only.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.descriptor_pb2 import FieldDescriptorProto, FileDescriptorProto

SUBSET = Path(__file__).parent / "fixtures" / "xai" / "billing_subset.proto"
TIMESTAMP = "google.protobuf.Timestamp"
_SCALARS = {
    "bool": FieldDescriptorProto.TYPE_BOOL,
    "double": FieldDescriptorProto.TYPE_DOUBLE,
    "int32": FieldDescriptorProto.TYPE_INT32,
    "int64": FieldDescriptorProto.TYPE_INT64,
    "string": FieldDescriptorProto.TYPE_STRING,
}


def is_repeated(field: Any) -> bool:
    """`FieldDescriptor.is_repeated` where protobuf has it (7.x dropped `label`), else the label."""
    return bool(field.is_repeated) if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED


@functools.cache
def classes() -> dict[str, Any]:
    """Message name → generated message class, for every message of the subset."""
    text = re.sub(r"//[^\n]*", "", SUBSET.read_text())
    package = re.search(r"package (\w+);", text)
    assert package is not None
    file = FileDescriptorProto(
        name="billing_subset.proto", package=package[1], syntax="proto3", dependency=["google/protobuf/timestamp.proto"]
    )
    for name, body in re.findall(r"message (\w+) \{(.*?)\}", text, re.S):
        message = file.message_type.add(name=name)
        for label, type_name, field_name, number in re.findall(r"(repeated |optional )?([\w.]+) (\w+) = (\d+);", body):
            field = message.field.add(name=field_name, number=int(number))
            repeated = label == "repeated "
            field.label = FieldDescriptorProto.LABEL_REPEATED if repeated else FieldDescriptorProto.LABEL_OPTIONAL
            if type_name in _SCALARS:
                field.type = _SCALARS[type_name]
            else:
                field.type = FieldDescriptorProto.TYPE_MESSAGE
                field.type_name = f".{TIMESTAMP}" if type_name == TIMESTAMP else f".{package[1]}.{type_name}"
            if label == "optional ":  # proto3 `optional`: a synthetic oneof, as protoc writes it
                field.proto3_optional = True
                field.oneof_index = len(message.oneof_decl)
                message.oneof_decl.add(name=f"_{field_name}")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(FileDescriptorProto.FromString(timestamp_pb2.DESCRIPTOR.serialized_pb))
    pool.Add(file)
    return {
        m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package[1]}.{m.name}"))
        for m in file.message_type
    }
