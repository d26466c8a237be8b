import pytest

from cnnport.runtime import MissingExtraError, Registry, UnknownNameError, require


def test_register_get_and_order():
    registry: Registry[int] = Registry("thing")

    @registry.register("alpha")
    def alpha():
        return 1

    registry.add("beta", 2)
    assert registry.get("alpha") is alpha
    assert registry.names() == ["alpha", "beta"]
    assert "beta" in registry
    assert len(registry) == 2


def test_duplicate_is_an_error():
    registry: Registry[int] = Registry("thing")
    registry.add("a", 1)
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        registry.add("a", 2)


def test_unknown_name_suggests_close_match_and_lists_known():
    registry: Registry[int] = Registry("architecture")
    for name in ("lenet5", "convnet", "alexnet"):
        registry.add(name, 0)
    with pytest.raises(UnknownNameError) as info:
        registry.get("lenet")
    assert (
        str(info.value)
        == "unknown architecture 'lenet'. Did you mean 'lenet5'? Known: alexnet, convnet, lenet5."
    )


def test_missing_extra_gives_install_hint():
    with pytest.raises(MissingExtraError, match=r'pip install "cnnport\[train\]"'):
        require("cnnport_no_such_module", extra="train", purpose="cnnport train")
    assert require("json").dumps([]) == "[]"
