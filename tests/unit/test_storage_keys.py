"""Object keys: deterministic, safe characters only, a sensible extension (docs/r2.md#idempotent-uploads)."""

from __future__ import annotations

import re

import pytest

from mediagen.storage.keys import (
    MAX_KEY_BYTES,
    bare_content_type,
    content_type_for_path,
    extension_for,
    object_key,
    prediction_folder,
    resource_prefix,
)

UID = "3f1c2b7e-8d4a-4c6e-9b1f-2a5d7e9c0b11"
SAFE = re.compile(r"^[A-Za-z0-9._/-]+$")


def test_key_layout() -> None:
    key = object_key("media", "team-a", "corgi", UID, "gm3qorzdhgbfurvjtvhg6dckhu", 0, "image/png")
    assert key == f"media/team-a/corgi/{UID}/gm3qorzdhgbfurvjtvhg6dckhu/0.png"


def test_key_is_deterministic_and_index_sensitive() -> None:
    args = ("media", "ns", "name", UID, "pred", 2, "video/mp4")
    assert object_key(*args) == object_key(*args)
    assert object_key("media", "ns", "name", UID, "pred", 3, "video/mp4") != object_key(*args)


def test_empty_and_slashy_prefixes() -> None:
    assert object_key("", "ns", "n", UID, "p", 0, ".png") == f"ns/n/{UID}/p/0.png"
    assert object_key("/a//b/", "ns", "n", UID, "p", 0, ".png") == f"a/b/ns/n/{UID}/p/0.png"


@pytest.mark.parametrize(
    ("prefix", "name"),
    [("out puts/ünï", "my name"), ("a?b#c", "x*y"), ("../..", "n"), ("a/./b", "n")],
)
def test_only_safe_characters_and_no_dot_segments(prefix: str, name: str) -> None:
    if any(seg.strip() and set(seg.strip()) <= {"."} for seg in prefix.split("/")):
        with pytest.raises(ValueError, match="prefix segment"):
            object_key(prefix, "ns", name, UID, "p", 0, "image/png")
        return
    key = object_key(prefix, "ns", name, UID, "p", 0, "image/png")
    assert SAFE.match(key), key
    assert "/../" not in f"/{key}/"
    assert "/./" not in f"/{key}/"


def test_resource_prefix_is_the_key_folder() -> None:
    prefix = resource_prefix("media", "ns", "n", UID)
    assert prefix == f"media/ns/n/{UID}/"
    assert object_key("media", "ns", "n", UID, "p", 0, "image/png").startswith(prefix)


def test_invalid_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="index"):
        object_key("m", "ns", "n", UID, "p", -1, "image/png")
    with pytest.raises(ValueError, match="prediction_id"):
        object_key("m", "ns", "n", UID, "", 0, "image/png")
    with pytest.raises(ValueError, match=str(MAX_KEY_BYTES)):
        object_key("p" * 1000, "ns", "n", UID, "p", 0, "image/png")


@pytest.mark.parametrize(
    ("value", "ext"),
    [
        ("image/png", ".png"),
        ("image/jpeg", ".jpg"),
        ("IMAGE/JPEG; charset=binary", ".jpg"),
        ("image/webp", ".webp"),
        ("image/gif", ".gif"),
        ("video/mp4", ".mp4"),
        ("audio/wav", ".wav"),
        ("audio/x-wav", ".wav"),
        ("audio/mpeg", ".mp3"),
        ("text/plain;charset=US-ASCII", ".txt"),
        ("application/json", ".json"),
        ("application/octet-stream", ".bin"),
        ("application/x-made-up", ".bin"),
        ("not a type", ".bin"),
        (".PNG", ".png"),
        (".tar.gz", ".bin"),
        (".weird!", ".bin"),
    ],
)
def test_extension_for(value: str, ext: str) -> None:
    assert extension_for(value) == ext


def test_content_type_for_path_uses_builtin_table() -> None:
    assert content_type_for_path("/yhqm/abc/out-0.png") == "image/png"
    assert content_type_for_path("/x/video.mp4") == "video/mp4"
    assert content_type_for_path("/x/noext") is None
    assert bare_content_type(" Text/Plain ; charset=utf-8") == "text/plain"


def test_the_folder_of_a_predictions_outputs_is_found_under_any_key_prefix_and_never_guessed() -> None:
    key = object_key("campaigns/summer", "ns", "gen", "u-1", "p1", 0, "image/png")
    assert prediction_folder(key, "ns", "gen", "u-1") == "campaigns/summer/ns/gen/u-1/p1/"
    assert prediction_folder(object_key("", "ns", "gen", "u-1", "p1", 2, ".png"), "ns", "gen", "u-1") == (
        "ns/gen/u-1/p1/"
    )
    for foreign in (
        object_key("", "ns", "other", "u-1", "p1", 0, ".png"),  # another resource's
        object_key("", "ns", "gen", "u-2", "p1", 0, ".png"),  # a resource of the same name before it
        "ns/gen/u-1/0.png",  # too short to hold a prediction folder
        "a/ns/gen/u-1/p1/",  # a folder, not an object
        "",
    ):
        assert prediction_folder(foreign, "ns", "gen", "u-1") is None, foreign
