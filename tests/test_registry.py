"""The one registry helper behind every plugin point: names in code and from entry points."""

from __future__ import annotations

import pytest

from hanlin.errors import NotFoundError
from hanlin.models.embeddings.base import EMBEDDERS, get_embedder
from hanlin.registry import Registry


def test_register_in_code_as_call_or_decorator() -> None:
    reg: Registry[object] = Registry("widget")

    @reg.register("round")
    def round_widget() -> str:
        return "round"

    reg.register("square", len)
    assert reg.names() == ["round", "square"] and len(reg) == 2 and "round" in reg
    assert reg.lookup("round") is round_widget and reg["square"] is len
    assert reg.get("missing") is None  # a mapping: get() never raises
    reg.register("round", str)  # a later registration replaces the earlier one
    assert reg.lookup("round") is str and reg.names() == ["round", "square"]
    reg.unregister("round")
    assert reg.names() == ["square"]


def test_unknown_name_lists_the_known_ones_and_the_closest() -> None:
    reg: Registry[int] = Registry("widget", hint="set widgets.kind in hanlin.toml")
    reg.register("sprocket", 1)
    reg.register("gear", 2)
    with pytest.raises(NotFoundError) as err:
        reg.lookup("sprockt")
    assert err.value.message == "unknown widget 'sprockt'"
    assert err.value.hint == (
        "did you mean 'sprocket'? use one of: gear, sprocket (set widgets.kind in hanlin.toml)"
    )


def test_entry_points_are_listed_without_importing_and_loaded_on_lookup() -> None:
    EMBEDDERS.refresh()
    assert {"fast-use", "e5-small"} <= set(EMBEDDERS.names())
    assert EMBEDDERS.origin("e5-small") == "hanlin.models.embeddings.e5:E5SmallEmbedder"
    assert "e5-small" not in EMBEDDERS._loaded  # listed, not imported
    model = get_embedder("e5-small")  # cheap: the constructor loads no weights
    assert model.name == "e5-small" and "e5-small" in EMBEDDERS._loaded
    with pytest.raises(NotFoundError, match="unknown embedding model 'fast-usse'") as err:
        get_embedder("fast-usse")
    assert err.value.hint is not None and "did you mean 'fast-use'?" in err.value.hint


def test_a_name_registered_in_code_wins_over_an_entry_point() -> None:
    class Stub:
        name = "fast-use"

    EMBEDDERS.register("fast-use", Stub)  # type: ignore[arg-type]
    try:
        assert isinstance(get_embedder("fast-use"), Stub)
    finally:
        EMBEDDERS.unregister("fast-use")  # forgets the entry point too, until refresh()
        EMBEDDERS.refresh()
    assert get_embedder("fast-use").name == "fast-use"
    assert EMBEDDERS.origin("fast-use").startswith("hanlin.models.embeddings.fast_use:")
