"""The configuration reference (`--help-config`, docs/configuration.md): every setting, as
Markdown and as a JSON schema."""

from __future__ import annotations

import dataclasses
import json

from versioncube.config import Config
from versioncube.config.reference import json_schema, markdown, reference


def test_the_reference_documents_every_setting_and_nested_key():
    text = markdown()
    for field in dataclasses.fields(Config):
        assert f"| `{field.name}` |" in text, field.name
    for nested in (
        "variables.NAME.dims", "variables.NAME.encoding.chunks", "variables.NAME.encoding.shards",
        "variables.NAME.encoding.compressor", "variables.NAME.attrs", "slice_polling.timeout",
        "profiling.restrictions",
    ):  # fmt: skip
        assert f"| `{nested}` |" in text, nested
    assert reference("md") == text


def test_the_json_reference_is_a_json_schema_of_the_same_settings():
    schema = json.loads(reference("json"))
    assert schema == json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {field.name for field in dataclasses.fields(Config)}
    variable = schema["properties"]["variables"]["additionalProperties"]
    assert set(variable["properties"]) == {"dims", "encoding", "attrs"}
    chunks = variable["properties"]["encoding"]["properties"]["chunks"]
    assert chunks["anyOf"][0]["items"]["anyOf"][0] == {"type": "integer", "exclusiveMinimum": 0}
    assert schema["properties"]["attrs_update_mode"]["enum"] == [
        "keep", "replace", "update", "ignore"
    ]  # fmt: skip
    assert schema["properties"]["zarr_version"]["const"] == 3
