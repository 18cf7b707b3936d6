"""Label config parsing: what DALT serves and the messages for what it does not."""

import pytest

from backend.labelconfig import UnsupportedConfig, parse_label_config
from tests.conftest import CONFIG_XML


def test_parses_the_config_label_studio_sent():
    cfg = parse_label_config(CONFIG_XML)
    assert (cfg.from_name, cfg.to_name, cfg.image_key) == ("label", "image", "image")
    assert cfg.classes == ("zero", "one", "two")


def test_label_of_reads_choices_and_ignores_unknown_values():
    cfg = parse_label_config(CONFIG_XML)
    item = {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["two"]}}
    assert cfg.label_of([item]) == "two"
    assert cfg.label_of([dict(item, value={"choices": ["seven"]})]) is None
    assert cfg.label_of([dict(item, from_name="other")]) is None
    assert cfg.label_of([]) is None and cfg.label_of(None) is None


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("", "empty"),
        ("<View><Image", "cannot be parsed"),
        ('<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="a"/>'
         '<Choice value="b"/></Choices></View>', "no <Image>"),
        ('<View><Image name="i" value="$i"/><RectangleLabels name="r" toName="i"><Label value="a"/>'
         "</RectangleLabels></View>", "no <Choices>"),
        ('<View><Image name="i" value="$i"/><Choices name="c" toName="i" choice="multiple">'
         '<Choice value="a"/><Choice value="b"/></Choices></View>', "several choices"),
        ('<View><Image name="i" value="$i"/><Choices name="c" toName="i"><Choice value="a"/>'
         "</Choices></View>", "at least two"),
    ],
)
def test_unsupported_configs_say_what_is_supported(xml, message):
    with pytest.raises(UnsupportedConfig) as err:
        parse_label_config(xml)
    assert message in str(err.value)
    assert "single-choice <Choices>" in str(err.value)
