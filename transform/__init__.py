"""Pure transforms: partner payloads in, `pyarrow.Table`s on the schemas of `transform.schemas` out."""

from transform.biomesight import transform_biomesight_results, transform_biomesight_statuses
from transform.gencove import (
    transform_gencove_ancestry,
    transform_gencove_project_samples,
    transform_gencove_quality_controls,
    transform_gencove_sample_customers,
    transform_gencove_sample_statuses,
    transform_gencove_samples,
    transform_gencove_trait_scores,
)
from transform.platform import (
    transform_biomesight_kit_registrations,
    transform_biomesight_order_requests,
    transform_platform_export,
)
from transform.pseudonym import customer_key, scrub_json
from transform.reference import lifecycle_stages_table, status_map_table
from transform.result import TransformResult, concat_results
from transform.runs import transform_sync_run
from transform.schemas import TABLES, TableSpec
from transform.status import is_final, to_stage
from transform.taxonomy import (
    TaxonomyDecodeError,
    decode_base64_csv,
    transform_biomesight_taxonomy,
    transform_biomesight_taxonomy_base64,
)

__all__ = [
    "TABLES",
    "TableSpec",
    "TaxonomyDecodeError",
    "TransformResult",
    "concat_results",
    "customer_key",
    "decode_base64_csv",
    "is_final",
    "lifecycle_stages_table",
    "scrub_json",
    "status_map_table",
    "to_stage",
    "transform_biomesight_kit_registrations",
    "transform_biomesight_order_requests",
    "transform_biomesight_results",
    "transform_biomesight_statuses",
    "transform_biomesight_taxonomy",
    "transform_biomesight_taxonomy_base64",
    "transform_gencove_ancestry",
    "transform_gencove_project_samples",
    "transform_gencove_quality_controls",
    "transform_gencove_sample_customers",
    "transform_gencove_sample_statuses",
    "transform_gencove_samples",
    "transform_gencove_trait_scores",
    "transform_platform_export",
    "transform_sync_run",
]
