import json


def parse_params(items):
    """`["a=1", "backbone_config.hidden_units=[64,32]"]` -> nested dict.

    Values are JSON when they parse as JSON, else strings; dotted keys nest.
    """
    params = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"--param takes KEY=VALUE. Received: {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ValueError(f"--param has an empty key. Received: {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = params
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--param {key!r} nests under a non-dict.")
        node[parts[-1]] = value
    return params


def merge_params(base, override):
    """`override` on top of `base`, nested dicts merged key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_params(out[key], value)
        else:
            out[key] = value
    return out
