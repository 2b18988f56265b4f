"""The SSRF guard: URL forms, address classes, every DNS answer checked."""

from __future__ import annotations

import ipaddress

import pytest

from app.webhooks.urlguard import UrlGuard, UrlRefused, address_problem, parse_target


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.3.4.5", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),  # unique local
        ("100.64.0.1", "not a public"),  # carrier-grade NAT
        ("0.0.0.0", "reserved"),
        ("::", "reserved"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("198.18.0.1", "private"),  # benchmarking
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo of 127.0.0.1
    ],
)
def test_forbidden_addresses(address: str, problem: str) -> None:
    found = address_problem(ipaddress.ip_address(address))
    assert found is not None and problem in found


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://hooks.example.com/x", "https://"),
        ("ftp://hooks.example.com/x", "https://"),
        ("https://user:pw@hooks.example.com/x", "user name or password"),
        ("https:///x", "no host"),
        ("https://2130706433/", "canonical"),  # decimal 127.0.0.1
        ("https://0x7f.1/", "canonical"),  # hex
        ("https://127.1/", "canonical"),  # short form
        ("https://0177.0.0.1/", "not valid"),  # octal
        ("https://" + "a" * 2100 + ".com/", "longer than"),
        ("not a url", "https://"),
    ],
)
def test_refused_url_forms(url: str, complaint: str) -> None:
    with pytest.raises(UrlRefused, match=complaint):
        parse_target(url, allow_private=False)


def test_accepted_url_forms() -> None:
    target = parse_target("https://Hooks.Example.COM./in?x=1", allow_private=False)
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.com", 443)
    local = parse_target("http://127.0.0.1:8080/in", allow_private=True)
    assert (local.scheme, local.host, local.port) == ("http", "127.0.0.1", 8080)


def resolver(answers: dict[str, list[str]], calls: list[str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in answers:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return answers[host]

    return resolve


async def test_every_dns_answer_is_checked() -> None:
    calls: list[str] = []
    guard = UrlGuard(
        allow_private=False,
        resolver=resolver(
            {
                "good.example": ["93.184.216.34", "2606:2800:220:1::1"],
                "mixed.example": ["93.184.216.34", "10.0.0.7"],
                "meta.example": ["169.254.169.254"],
            },
            calls,
        ),
    )
    assert [str(a) for a in await guard.addresses("good.example", 443)] == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]
    with pytest.raises(UrlRefused, match=r"mixed.example resolves to 10.0.0.7 is a private"):
        await guard.addresses("mixed.example", 443)
    with pytest.raises(UrlRefused, match=r"link-local.*RADIOSILENCE_WEBHOOK_ALLOW_PRIVATE"):
        await guard.check_url("https://meta.example/latest/meta-data")
    with pytest.raises(UrlRefused, match=r"could not resolve nowhere\.example"):
        await guard.check_url("https://nowhere.example/")


async def test_ip_literals_are_checked_without_dns() -> None:
    calls: list[str] = []
    guard = UrlGuard(allow_private=False, resolver=resolver({}, calls))
    with pytest.raises(UrlRefused, match="loopback"):
        await guard.check_url("https://[::ffff:127.0.0.1]/x")
    with pytest.raises(UrlRefused, match="link-local"):
        await guard.check_url("https://169.254.169.254/")
    await guard.check_url("https://93.184.216.34/ok")
    assert calls == []


async def test_answers_are_cached_briefly_and_refusals_are_not() -> None:
    calls: list[str] = []
    clock = [0.0]
    answers = {"h.example": ["93.184.216.34"]}
    guard = UrlGuard(
        allow_private=False,
        resolver=resolver(answers, calls),
        cache_seconds=10,
        monotonic=lambda: clock[0],
    )
    await guard.addresses("h.example", 443)
    await guard.addresses("h.example", 443)
    assert calls == ["h.example"]
    clock[0] = 11
    answers["h.example"] = ["127.0.0.1"]  # rebinding after the cache period
    with pytest.raises(UrlRefused, match="loopback"):
        await guard.addresses("h.example", 443)
    with pytest.raises(UrlRefused):
        await guard.addresses("h.example", 443)
    assert calls == ["h.example"] * 3


async def test_allow_private_lets_loopback_and_http_through() -> None:
    guard = UrlGuard(allow_private=True, resolver=resolver({"localhost": ["127.0.0.1"]}, []))
    target = await guard.check_url("http://localhost:8080/hook")
    assert target.port == 8080
    assert [str(a) for a in await guard.addresses("localhost", 8080)] == ["127.0.0.1"]
