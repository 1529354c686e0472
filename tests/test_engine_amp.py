"""``amp: auto`` and fp32 depthwise convolutions under CPU bf16 autocast (the training default)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pixelwise.engine import config
from pixelwise.engine import forward as fw

CPU = torch.device("cpu")


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(4, 8, 1, bias=False),  # dense: bf16 under autocast
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),  # depthwise: kept fp32
        nn.Conv2d(8, 3, 1),
    )


def test_auto_resolves_to_bf16_only_where_the_device_has_it(monkeypatch):
    assert fw.resolve_amp("none", CPU) == "none" and fw.resolve_amp("bf16", CPU) == "bf16"
    monkeypatch.setattr(fw, "native_bf16", lambda device: True)
    assert fw.resolve_amp("auto", CPU) == "bf16"
    monkeypatch.setattr(fw, "native_bf16", lambda device: False)
    assert fw.resolve_amp("auto", CPU) == "none"
    assert isinstance(fw.autocast(CPU, "auto"), type(fw.autocast(CPU, "none")))  # no autocast at all


def test_native_bf16_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not fw.native_bf16(CPU)  # AVX-512 alone emulates bf16: slower than fp32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert fw.native_bf16(CPU)
    assert not fw.native_bf16(torch.device("meta"))


def test_config_accepts_auto_and_names_the_choices_otherwise():
    base = {"model": "m", "dataset": "d", "root": "r", "iterations": 1}
    config.validate(config.resolve({**base, "amp": "auto"}))
    with pytest.raises(Exception, match="amp must be one of none, bf16, fp16, auto"):
        config.validate(config.resolve({**base, "amp": "fp8"}))


def test_grouped_convs_run_fp32_under_cpu_autocast_and_nothing_else_changes():
    net, ref = _net(), _net()
    assert fw.keep_grouped_convs_fp32(net) == 1
    assert fw.keep_grouped_convs_fp32(net) == 0  # idempotent
    assert net.state_dict().keys() == ref.state_dict().keys()
    x = torch.randn(2, 4, 6, 6)
    # without autocast: exactly the class's forward
    assert torch.equal(net(x), ref(x))
    seen = {}
    net[1].register_forward_hook(lambda m, i, o: seen.update(dw=(i[0].dtype, o.dtype)))
    net[2].register_forward_hook(lambda m, i, o: seen.update(pw=o.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x)
    assert seen["dw"] == (torch.bfloat16, torch.float32)  # bf16 in, computed and returned in fp32
    assert seen["pw"] == torch.bfloat16  # the dense conv after it is still autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_ref = ref(x)
    # the depthwise step in fp32 is closer to the fp32 result than all-bf16
    exact = ref(x)
    assert (y.float() - exact).abs().max() <= (y_ref.float() - exact).abs().max() * 1.5
    y.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in net.parameters())


def test_the_fp32_forward_survives_deepcopy_and_binds_to_the_copy():
    net = _net()
    fw.keep_grouped_convs_fp32(net)
    twin = copy.deepcopy(net)
    assert twin[1].forward.__self__ is twin[1]
    with torch.no_grad():
        twin[1].weight.zero_()
    x = torch.randn(1, 4, 5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert twin(x).float().abs().sum() != net(x).float().abs().sum()  # the copy uses its own weights


@pytest.mark.parametrize(("amp", "native", "patched"), [("auto", True, 2), ("auto", False, 0), ("none", True, 0)])
def test_prepare_amp_resolves_and_keeps_depthwise_fp32_only_under_cpu_bf16(monkeypatch, amp, native, patched):
    monkeypatch.setattr(fw, "native_bf16", lambda device: native)
    net = nn.Sequential(_net(), nn.Conv2d(3, 3, 3, padding=1, groups=3))
    resolved = fw.prepare_amp(net, amp, CPU)
    assert resolved == ("bf16" if amp == "auto" and native else "none")
    assert sum("forward" in vars(m) for m in net.modules()) == patched  # the two grouped convs
    assert fw.cpu_bf16("bf16", CPU) and not fw.cpu_bf16("bf16", torch.device("meta"))
