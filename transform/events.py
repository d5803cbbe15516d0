"""The one alphabet a webhook event id is written in.

Event ids become file names in the landing store (`warehouse.landing`) and are checked by the receiver
(`extract.webhooks`) before anything is landed: one pattern for both, so an id the receiver accepts is one the
store can name, and a change to either cannot drift from the other.
"""

from __future__ import annotations

import re
from typing import Final

SAFE_EVENT_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
