import pytest

from content.domain.links import find_link
from content.domain.webhooks import gives_up, retry_delay, sign, verify


@pytest.mark.parametrize(
    "text",
    [
        "buy here https://evil.example/x",
        "see www.cheap-stuff.net",
        "加我 taobao.com/item?id=1",
        "go to shop。xyz now",
        "weixin://dl/chat",
        "bit.ly/abc",
    ],
)
def test_links_are_found(text: str) -> None:
    assert find_link(text) is not None


@pytest.mark.parametrize(
    "text", ["宝宝很喜欢，已回购", "3.5 stars, size M.", "Great!!! 10/10", "e.g. this one"]
)
def test_plain_text_has_no_link(text: str) -> None:
    assert find_link(text) is None


def test_signature_round_trip_and_tampering() -> None:
    body = b'{"post_id": "1"}'
    header = sign("s3cret", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert verify("s3cret", header, body, now=1_700_000_010)
    assert not verify("other", header, body, now=1_700_000_010)
    assert not verify("s3cret", header, body + b" ", now=1_700_000_010)
    assert not verify("s3cret", header, body, now=1_700_000_000 + 301)  # stale: replay refused
    assert not verify("s3cret", "garbage", body, now=1_700_000_000)


def test_backoff_doubles_and_caps() -> None:
    delays = [retry_delay(n).total_seconds() for n in range(1, 11)]
    assert delays[:4] == [10, 20, 40, 80]
    assert max(delays) == 3600
    assert not gives_up(7)
    assert gives_up(8)
