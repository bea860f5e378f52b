"""Decode Stripe's form encoding (``a[b][c]=v``, ``a[0]=v``, ``a[]=v``) into nested dicts and lists."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["FormError", "decode_form"]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class FormError(ValueError):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def decode_form(body: str) -> dict[str, Any]:
    """Nested dict of the form/query string; indexed sub-keys (``[0]``, ``[1]``, ``[]``) become lists."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True, strict_parsing=False):
        m = _KEY.match(raw_key)
        if m is None:
            raise FormError(f"Invalid parameter name: {raw_key}", raw_key)
        parts = [m.group(1), *re.findall(r"\[([^\[\]]*)\]", m.group(2))]
        node: dict[str, Any] = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                part = str(_next_index(node))
            if last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise FormError(f"Invalid value for {parts[0]}: conflicting keys", parts[0])
                node = child
    return _listify(root)


def _next_index(node: dict[str, Any]) -> int:
    return len([k for k in node if k.isdigit()])


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out
