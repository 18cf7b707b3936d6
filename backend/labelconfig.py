"""Which Label Studio label configs DALT can serve, parsed with ``label_studio_sdk.label_interface``.

DALT classifies whole images: the config needs one ``<Image>`` object and a single-choice ``<Choices>``
control pointing at it. Everything else is refused with a message that says what is supported, because
Label Studio shows that message to the admin on the Model settings page.
"""

from __future__ import annotations

from dataclasses import dataclass

from label_studio_sdk.label_interface import LabelInterface

from backend.cache import ByteLRU

SUPPORTED = (
    "DALT serves image classification: a label config with one <Image> object and one "
    'single-choice <Choices> control whose toName is that image, e.g. <View><Image name="image" '
    'value="$image"/><Choices name="label" toName="image" choice="single"><Choice value="cat"/>'
    '<Choice value="dog"/></Choices></View>'
)


class UnsupportedConfig(ValueError):
    """The label config is not an image classification DALT can serve."""


@dataclass(frozen=True)
class ClassificationConfig:
    """The parts of a label config that predictions and webhooks need."""

    from_name: str
    to_name: str
    image_key: str
    classes: tuple[str, ...]

    def label_of(self, result: list | None) -> str | None:
        """The chosen class in an annotation's ``result`` (None for empty, skipped or other controls).

        A choice that is not one of the config's classes counts as no label: training on it would make
        the head predict a value Label Studio cannot show.
        """
        for item in result or []:
            if not isinstance(item, dict) or item.get("from_name") != self.from_name:
                continue
            value = item.get("value")
            choices = value.get("choices") if isinstance(value, dict) else None
            if isinstance(choices, list) and choices and isinstance(choices[0], str):
                return choices[0] if choices[0] in self.classes else None
        return None


def parse_label_config(xml: str) -> ClassificationConfig:
    """Parse and check a label config.

    Raises:
        UnsupportedConfig: with a message naming what is wrong and what is supported.
    """
    if not isinstance(xml, str) or not xml.strip():
        raise UnsupportedConfig(f"empty label config. {SUPPORTED}")
    try:
        li = LabelInterface(xml)
    except Exception as exc:  # the SDK raises several exception types for bad XML
        raise UnsupportedConfig(f"label config cannot be parsed ({exc}). {SUPPORTED}") from None
    choices = [c for c in li.controls if c.tag == "Choices"]
    images = {o.name: o for o in li.objects if o.tag == "Image"}
    if not images:
        raise UnsupportedConfig(f"the label config has no <Image> object. {SUPPORTED}")
    candidates = [c for c in choices if any(t in images for t in (c.to_name or []))]
    if not candidates:
        raise UnsupportedConfig(f"the label config has no <Choices> control on an <Image>. {SUPPORTED}")
    ctrl = candidates[0]
    if ctrl.is_multiple_choice:
        raise UnsupportedConfig(f'<Choices name="{ctrl.name}"> allows several choices. {SUPPORTED}')
    classes = tuple(dict.fromkeys(ctrl.labels or []))
    if len(classes) < 2:
        raise UnsupportedConfig(f'<Choices name="{ctrl.name}"> needs at least two <Choice> values. {SUPPORTED}')
    image = images[next(t for t in ctrl.to_name if t in images)]
    value = image.value or ""
    if not value.startswith("$") or len(value) < 2:
        raise UnsupportedConfig(f'<Image name="{image.name}"> needs value="$field". {SUPPORTED}')
    return ClassificationConfig(from_name=ctrl.name, to_name=image.name, image_key=value[1:], classes=classes)


def _cost(entry: tuple[str, ClassificationConfig]) -> int:
    """Bytes a cached config holds: its text (the key) and its classes."""
    xml, cfg = entry
    return 256 + len(xml) + sum(64 + len(c) for c in cfg.classes)


# Parsed configs by their text (DALT_CONFIG_CACHE_BYTES; ``create_app`` and the jobs apply the budget).
config_cache: ByteLRU[str, tuple[str, ClassificationConfig]] = ByteLRU(16 * 2**20, _cost, name="label configs")


def cached_config(xml: str) -> ClassificationConfig:
    """:func:`parse_label_config` once per distinct text: Label Studio repeats the config on every call.

    The cache is bounded in bytes (a label config is unauthenticated input and may be megabytes long);
    configs that cannot be served are not cached.

    Raises:
        UnsupportedConfig: as :func:`parse_label_config`.
    """
    hit = config_cache.get(xml)
    if hit is not None:
        return hit[1]
    cfg = parse_label_config(xml)
    config_cache.put(xml, (xml, cfg))
    return cfg
