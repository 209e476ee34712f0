"""The GPU catalog (published specs with sources, user additions) and count parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from hanlin.compute import CATALOG, get_gpu, list_gpus, parse_context, parse_count
from hanlin.errors import ConfigError, InvalidInputError, NotFoundError

REQUIRED = [
    "A100-40G",
    "A100-80G",
    "A800-80G",
    "H100-SXM",
    "H100-PCIe",
    "H800",
    "H20",
    "H200",
    "B200",
    "L40S",
    "RTX-4090",
    "MI300X",
    "Ascend-910B",
]


def test_catalog_has_every_accelerator_the_issue_lists_with_a_source() -> None:
    names = [g.name for g in CATALOG]
    assert names == REQUIRED
    for gpu in CATALOG:
        assert len(gpu.source) > 20, gpu.name
        assert gpu.memory_gib > 0 and gpu.bandwidth_gbs > 0 and gpu.bf16_tflops > 0


def test_catalog_figures_are_dense_datasheet_values() -> None:
    # H100 SXM datasheet: 1,979 BF16 TFLOPS *with sparsity* → 989.4 dense; 3.35 TB/s
    h100 = get_gpu("H100")
    assert h100.bf16_tflops == pytest.approx(1979 / 2, rel=0.001) and h100.bandwidth_gbs == 3350
    assert get_gpu("A100-80G").peak_flops() == 312e12
    assert get_gpu("H20").bandwidth_gbs > h100.bandwidth_gbs > get_gpu("A100").bandwidth_gbs
    assert get_gpu("H800").bf16_tflops == h100.bf16_tflops  # same chip, less NVLink
    assert get_gpu("H800").interconnect_gbs == 400 and h100.interconnect_gbs == 900
    assert get_gpu("A100-40G").fp8_tflops is None  # Ampere has no FP8


@pytest.mark.parametrize("alias", ["a100", "A100 80GB", "a100-sxm4-80gb", "A100-80G"])
def test_names_are_forgiving(alias: str) -> None:
    assert get_gpu(alias).name == "A100-80G"


def test_unknown_gpu_suggests_the_closest() -> None:
    with pytest.raises(NotFoundError, match="unknown GPU 'H100-SMX'") as info:
        get_gpu("H100-SMX")
    assert "H100-SXM" in (info.value.hint or "")
    assert "gpus.toml" in (info.value.hint or "")


def test_users_add_their_own_gpu(hanlin_home: Path) -> None:
    (hanlin_home / "gpus.toml").write_text(
        '[[gpu]]\nname = "MyCard-48G"\nmemory_gib = 48\nbandwidth_gbs = 960\n'
        'bf16_tflops = 181\nsource = "vendor sheet"\n\n'
        '[[gpu]]\nname = "H20"\nmemory_gib = 141\nbandwidth_gbs = 4800\nbf16_tflops = 148\n'
    )
    mine = get_gpu("mycard 48g")
    assert mine.user_defined and mine.memory_gib == 48 and mine.source == "vendor sheet"
    assert get_gpu("H20").memory_gib == 141  # the user's entry replaces the built-in one
    assert len([g for g in list_gpus() if g.name == "H20"]) == 1


def test_a_broken_user_gpu_file_names_the_file_and_the_entry(hanlin_home: Path) -> None:
    (hanlin_home / "gpus.toml").write_text('[[gpu]]\nname = "Half"\nmemory_gib = 24\n')
    with pytest.raises(ConfigError, match="GPU Half is invalid") as info:
        get_gpu("Half")
    assert "gpus.toml" in str(info.value)
    (hanlin_home / "gpus.toml").write_text("[[gpu]\nname = ")
    with pytest.raises(ConfigError, match="cannot parse"):
        list_gpus()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("300B", 300 * 10**9),
        ("1.4T", 1_400 * 10**9),
        ("2e12", 2 * 10**12),
        ("10M", 10**7),
        ("1,024", 1024),
        ("2_048", 2048),
        (4096, 4096),
        ("750k", 750_000),
    ],
)
def test_token_counts_read_like_people_write_them(text: str | int, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize("bad", ["300X", "lots", "-5B", "1.5", "", "B300"])
def test_unreadable_counts_say_how_to_write_them(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="token count") as info:
        parse_count(bad, what="token count")
    assert "300B" in (info.value.hint or "") or "whole number" in info.value.message


def test_context_k_is_binary() -> None:
    assert parse_context("32k") == 32768 and parse_context("128K") == 131072
    assert parse_context("4096") == 4096
