"""Spotting links in member comments (only staff may post them): schemes, www., bare domains, short links."""

from __future__ import annotations

import re

_LINK = re.compile(
    r"""(
        [a-z][a-z0-9+.-]*://           # any scheme: http://, https://, weixin://
      | \bwww\.                        # www.anything
      | \b[a-z0-9-]+(\.[a-z0-9-]+)*
        \.(com|cn|net|org|io|co|me|ly|top|xyz|shop|store|vip|cc|tv|info|link|site)\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)


def find_link(text: str) -> str | None:
    """The first link-looking fragment of `text`, or None."""
    normalised = text.replace("。", ".").replace("．", ".").replace("：", ":").replace("／", "/")
    match = _LINK.search(normalised)
    return match.group(0) if match else None
