"""`body_json`'s shortcut for objects of plain strings writes exactly the text the general path writes."""

from __future__ import annotations

import base64
import random
import string

from transform.biomesight import taxonomy_raw_body
from transform.raw import body_json, fit_to_keep
from transform.values import to_json

# printable ASCII, the characters JSON escapes, DEL, non-ASCII and a lone surrogate
TRICKY = string.printable + '"\\\x00\x1f\x7fé中\u2028\ud800'


def _general(body: object) -> str:
    return to_json(fit_to_keep(body))


def test_a_taxonomy_body_is_the_general_text() -> None:
    csv = b"taxonomy,abundance\nk__Bacteria;p__Firmicutes,0.5\n" * 200
    body = taxonomy_raw_body(csv)
    assert body_json(body) == _general(body)
    assert body_json(body) == '{"csv":"' + base64.b64encode(csv).decode() + '"}'


def test_objects_of_strings_of_any_kind_agree_with_the_general_path() -> None:
    rng = random.Random(14)
    names = ["csv", "id", "status", "metadata", "download_url", "b", "a", "Z", "é"]
    for _ in range(20_000):
        body = {
            rng.choice(names) if rng.random() < 0.7 else _text(rng, string.printable): _text(rng, TRICKY)
            if rng.random() < 0.3
            else _text(rng, string.ascii_letters + string.digits + "+/=")
            for _ in range(rng.randint(0, 4))
        }
        assert body_json(body) == _general(body), body


def test_other_bodies_take_the_general_path() -> None:
    for body in [
        {"csv": 1},
        {"a": None},
        {"metadata": "x"},
        {"download_url": "https://bucket.example/presigned?sig=1"},
        {"a": ["b"]},
        ["a"],
        "text",
        {},
    ]:
        assert body_json(body) == _general(body)


def _text(rng: random.Random, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
