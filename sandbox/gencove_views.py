"""How a Gencove sample looks on the wire at a moment: list items, sample detail, status history.

Shapes follow partners/NOTES.md exactly: microsecond Z timestamps, the space-separated
`archive_last_status.created`, `failed_qc` as a list, no `files`/`project` in list items.
"""

from __future__ import annotations

import bisect
import uuid
from datetime import datetime
from typing import Any

from sandbox.model import GENCOVE_FINAL_STATUSES, GencoveSample, StatusChange
from sandbox.wire import gencove_archive_time, gencove_time

# Stable ids for status records, so that repeated fetches (and webhook retries) agree.
_STATUS_NAMESPACE = uuid.UUID("0b6c6c44-6a3f-4f0e-9d59-0c1f4b1a2e77")
FAILED_STATUSES = ("failed", "failed qc", "failed_qc")
# The status a sample shows before its timeline's first change is visible (the kit was just requested).
INITIAL_STATUS = "kit_requested"


def visible_index(timeline: list[StatusChange], moment: datetime) -> int:
    """Index of the latest change at or before `moment`, or -1 before the first (timelines are sorted)."""
    return bisect.bisect_right([change.at for change in timeline], moment) - 1


def status_id(sample_id: str, track: str, index: int) -> str:
    """A deterministic uuid for the `index`-th change of a sample's status (or archive) track."""
    return str(uuid.uuid5(_STATUS_NAMESPACE, f"{sample_id}/{track}/{index}"))


def current_status(sample: GencoveSample, moment: datetime) -> str:
    """The sample's status string at `moment`."""
    index = visible_index(sample.timeline, moment)
    return sample.timeline[index].status if index >= 0 else INITIAL_STATUS


def current_archive_status(sample: GencoveSample, moment: datetime) -> str:
    """The archive track's status at `moment` (files start out available)."""
    index = visible_index(sample.archive_timeline, moment)
    return sample.archive_timeline[index].status if index >= 0 else "available"


def is_final(status: str) -> bool:
    """Succeeded or failed for good: deliverables, QC and webhooks exist from here on."""
    return status in GENCOVE_FINAL_STATUSES


def list_item(sample: GencoveSample, moment: datetime, status_override: str | None = None) -> dict[str, Any]:
    """A `project-samples` list item as seen at `moment`."""
    index = visible_index(sample.timeline, moment)
    if index >= 0:
        change = sample.timeline[index]
        last_status = {
            "id": status_id(sample.sample_id, "status", index),
            "status": change.status,
            "note": change.description,
            "created": gencove_time(change.at),
        }
    else:
        last_status = {
            "id": status_id(sample.sample_id, "status", -1),
            "status": INITIAL_STATUS,
            "note": "",
            "created": gencove_time(sample.created),
        }
    if status_override is not None:
        last_status["status"] = status_override
    archive_index = visible_index(sample.archive_timeline, moment)
    archive_change = sample.archive_timeline[archive_index] if archive_index >= 0 else None
    failed = last_status["status"] in FAILED_STATUSES
    return {
        "id": sample.sample_id,
        "run": None,
        "created": gencove_time(sample.created),
        "modified": gencove_time(sample.modified_at(moment)),
        "hidden": sample.hidden,
        "client_id": sample.client_id,
        "physical_id": "",
        "legacy_id": "",
        "last_status": last_status,
        "archive_last_status": {
            "id": status_id(sample.sample_id, "archive", archive_index),
            "status": archive_change.status if archive_change else "available",
            "created": gencove_archive_time(archive_change.at if archive_change else sample.created),
            "transition_cutoff": None,
        },
        "failed_qc": list(sample.failed_qc) if failed else [],
    }


def sample_detail(
    sample: GencoveSample, moment: datetime, base_url: str, status_override: str | None = None
) -> dict[str, Any]:
    """`samples/{id}`: the list item plus `project` and the deliverables visible at `moment`."""
    item = list_item(sample, moment, status_override)
    item["project"] = sample.project_id
    files = sample.files if is_final(current_status(sample, moment)) else []
    item["files"] = [
        {
            "id": file.file_id,
            "s3_path": file.s3_path,
            "size": file.size,
            "download_url": presigned_url(base_url, file.file_id, file.s3_path),
            "file_type": file.file_type,
            "checksum_sha256": file.checksum_sha256,
            "shadow_mode": None,
        }
        for file in files
    ]
    return item


def presigned_url(base_url: str, file_id: str, s3_path: str) -> str:
    """A fake presigned download URL on the sandbox host (shape of an S3 one; nothing is served there)."""
    name = s3_path.rsplit("/", 1)[-1]
    signature = uuid.uuid5(_STATUS_NAMESPACE, f"sign/{file_id}").hex
    return (
        f"{base_url}/_sandbox/files/{file_id}/{name}"
        f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature={signature}"
    )


def status_history(sample: GencoveSample, moment: datetime) -> list[dict[str, Any]]:
    """`sample-statuses/{id}` items, newest first (Django's `-created` ordering)."""
    last = visible_index(sample.timeline, moment)
    return [
        {
            "id": status_id(sample.sample_id, "status", index),
            "status": sample.timeline[index].status,
            "note": sample.timeline[index].description,
            "created": gencove_time(sample.timeline[index].at),
        }
        for index in range(last, -1, -1)
    ]
