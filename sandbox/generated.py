"""Kits and samples of a generated world whose heavy parts (taxonomy, deliverables) are built on access.

`GeneratedKit.result` and `GeneratedSample.files` (and friends) read like the plain dataclass fields of
`sandbox.model`, but hold only a recipe; assigning to them stores the assigned value, which then wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.gencove_results import (
    DeliverableRecipe,
    build_ancestry,
    build_files,
    build_quality_controls,
    build_trait_scores,
)
from sandbox.model import BiomesightResult, GencoveSample, Kit
from sandbox.results import ResultRecipe, build_result


class GeneratedKit(Kit):
    """A kit whose `result` is derived from a `ResultRecipe` when read (see sandbox.results.build_result)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_recipe"] = None
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def result(self) -> BiomesightResult | None:
        """The lab result (None until the lab will produce one); built from the recipe, cached briefly."""
        explicit = self.__dict__.get("_result")
        if explicit is not None:
            return explicit
        recipe = self.__dict__.get("_recipe")
        return None if recipe is None else build_result(recipe)

    @result.setter
    def result(self, value: BiomesightResult | None) -> None:
        self.__dict__["_result"] = value
        if value is None:
            self.__dict__["_recipe"] = None

    @property
    def result_recipe(self) -> ResultRecipe | None:
        """What the result is derived from, without building it."""
        return self.__dict__.get("_recipe")

    def set_result_recipe(self, recipe: ResultRecipe) -> None:
        """Make the result the one derived from `recipe`."""
        self.__dict__["_result"] = None
        self.__dict__["_recipe"] = recipe


def _lazy(name: str, build: Callable[[DeliverableRecipe], Any], empty: Callable[[], Any]) -> property:
    def read(self: GeneratedSample) -> Any:
        overrides = self.__dict__["_overrides"]
        if name in overrides:
            return overrides[name]
        recipe = self.__dict__.get("_deliverables")
        return empty() if recipe is None else build(recipe)

    def write(self: GeneratedSample, value: Any) -> None:
        self.__dict__["_overrides"][name] = value

    return property(
        read, write, doc=f"The sample's {name}, built from its deliverable recipe unless assigned."
    )


class GeneratedSample(GencoveSample):
    """A Gencove sample whose files, QC, trait scores and ancestry are derived from a `DeliverableRecipe`."""

    def __init__(self, *args: Any, deliverables: DeliverableRecipe | None = None, **kwargs: Any) -> None:
        self.__dict__["_overrides"] = {}
        super().__init__(*args, **kwargs)
        if deliverables is not None:
            # Forget the empty defaults the dataclass __init__ just assigned through the properties.
            self.__dict__["_overrides"].clear()
        self.__dict__["_deliverables"] = deliverables

    @property
    def deliverables(self) -> DeliverableRecipe | None:
        """What the deliverables are derived from."""
        return self.__dict__.get("_deliverables")

    files = _lazy("files", build_files, list)  # type: ignore[assignment]
    quality_controls = _lazy("quality_controls", build_quality_controls, list)  # type: ignore[assignment]
    trait_scores = _lazy("trait_scores", build_trait_scores, list)  # type: ignore[assignment]
    ancestry = _lazy("ancestry", build_ancestry, dict)  # type: ignore[assignment]
