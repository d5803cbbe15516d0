"""The partner clients' shortcuts through httpx send exactly what httpx itself would send.

`request_url` joins a call's path and params onto the base URL once instead of letting httpx parse three
times, and the clients' cookie store skips responses that set no cookie: both are CPU savings only, so the
requests must be byte for byte the ones httpx builds from the relative path, and a cookie still sticks.
"""

from __future__ import annotations

import random
import string

import httpx
import pytest

from extract.biomesight import kit_status_call, results_call, taxonomy_csv_call
from extract.gencove import page_call, sample_call, sample_statuses_paginator
from extract.http import Call, SetCookieOnly, build_async_client, build_client, joinable_base, request_url

BASES = [
    "http://127.0.0.1:8000",
    "https://api.example.com/prefix",
    "https://api.example.com/prefix/",
    "http://[::1]:80/a%20b/",
]
# Ids with every printable ASCII character, reserved ones and non-ASCII: the call builders escape them.
ALPHABET = string.ascii_letters + string.digits + string.punctuation + " éü中"


def _calls(identifier: str) -> list[Call[object]]:
    return [
        sample_call(identifier),
        kit_status_call(identifier),
        results_call(identifier, "json"),
        taxonomy_csv_call(identifier),
        page_call(sample_statuses_paginator(identifier)),
        Call(
            "GET",
            "/api/v2/listing/" + identifier[:4],  # unescaped: may hold "?" or "#" (left to httpx)
            lambda r: r,
            params={
                "modified_after": "2026-01-01T00:00:00.123456Z",
                "q": identifier,
                "limit": 200,
                "flag": True,
                "none": None,
                "many": [1, identifier],
                "ratio": 1.5,
            },
        ),
        Call("GET", "https://elsewhere.example.com/next?page=2", lambda r: r, params={"limit": 5}),
    ]


@pytest.mark.parametrize("base", BASES)
def test_joined_urls_are_the_ones_httpx_builds(base: str) -> None:
    client = httpx.Client(base_url=base)
    joinable = joinable_base(client.base_url)
    rng = random.Random(base)
    for _ in range(300):
        identifier = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 16)))
        for call in _calls(identifier):
            expected = client.build_request(call.method, call.url, params=call.params).url
            url, params = request_url(joinable, call)
            sent = client.build_request(call.method, url, params=params).url
            assert (str(sent), sent.raw_path) == (str(expected), expected.raw_path), (call.url, call.params)


def test_a_base_url_with_a_query_is_left_to_httpx() -> None:
    client = httpx.Client(base_url="https://api.example.com/v1?tenant=a")
    assert joinable_base(client.base_url) == ""
    call = Call("GET", "/samples/1", lambda r: r, params={"limit": 1})
    assert request_url("", call) == ("/samples/1", {"limit": 1})


def _set_cookie(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/login":
        return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"}, json={})
    return httpx.Response(200, json={"cookie": request.headers.get("cookie")})


def test_a_cookie_the_partner_sets_is_kept_and_sent_back() -> None:
    with build_client(
        "http://partner.test", httpx.Auth(), transport=httpx.MockTransport(_set_cookie)
    ) as client:
        assert client.get("/nothing").json() == {"cookie": None}
        assert dict(client.cookies) == {}
        assert isinstance(client.cookies, SetCookieOnly)  # the store httpx keeps in a private attribute
        client.get("/login")
        assert dict(client.cookies) == {"session": "abc"}
        assert client.get("/again").json() == {"cookie": "session=abc"}


@pytest.mark.anyio
async def test_the_async_client_keeps_cookies_too() -> None:
    transport = httpx.MockTransport(_set_cookie)
    async with build_async_client("http://partner.test", httpx.Auth(), transport=transport) as client:
        await client.get("/login")
        assert (await client.get("/again")).json() == {"cookie": "session=abc"}
