"""Catalog assembly (split responses, duplicates, timeouts, caps) and the group/channel tree."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xueliang.gb28181 import manscdp as m
from xueliang.gb28181.catalog import (
    CatalogAssembler,
    CatalogComplete,
    CatalogIncomplete,
    build_tree,
    children_of,
)
from xueliang.gb28181.manscdp import CatalogItem

NVR = "34020000001180000001"
PLATFORM = "34020000002000000001"


def cam(n: int) -> CatalogItem:
    return CatalogItem(f"3402000000131{n:07d}", name=f"通道{n}", parent_ids=[NVR])


def test_one_item_per_message_completes_at_sum_num() -> None:
    asm: CatalogAssembler[CatalogItem] = CatalogAssembler()
    items = [cam(i) for i in range(5)]
    for i, it in enumerate(items[:4]):
        assert asm.add(NVR, 7, 5, [it], now=float(i)) is None
        assert len(asm) == 1
    done = asm.add(NVR, 7, 5, [items[4]], now=4.0)
    assert isinstance(done, CatalogComplete)
    assert (done.device_id, done.sn) == (NVR, 7)
    assert done.items == items
    assert len(asm) == 0
    assert asm.expire(1000.0) == []


def test_out_of_order_and_duplicates() -> None:
    asm: CatalogAssembler[CatalogItem] = CatalogAssembler()
    items = [cam(i) for i in range(4)]
    assert asm.add(NVR, 1, 4, [items[3], items[1]], now=0.0) is None
    assert asm.add(NVR, 1, 4, [items[1]], now=0.5) is None  # resent part
    assert asm.add(NVR, 1, 4, [items[3], items[1]], now=0.6) is None  # resent again
    assert asm.add(NVR, 1, 4, [items[0]], now=1.0) is None
    done = asm.add(NVR, 1, 4, [items[2], items[0]], now=2.0)
    assert done is not None
    assert [i.device_id for i in done.items] == [items[k].device_id for k in (3, 1, 0, 2)]
    # a late resend of a finished catalog opens nothing
    assert asm.add(NVR, 1, 4, [items[2]], now=3.0) is None
    assert len(asm) == 0
    assert asm.expire(100.0) == []


def test_separate_devices_and_sns_are_independent() -> None:
    asm: CatalogAssembler[CatalogItem] = CatalogAssembler()
    other = "34020000001180000002"
    assert asm.add(NVR, 1, 2, [cam(1)], now=0) is None
    assert asm.add(NVR, 2, 2, [cam(1)], now=0) is None
    assert asm.add(other, 1, 2, [cam(1)], now=0) is None
    assert len(asm) == 3
    done = asm.add(NVR, 2, 2, [cam(2)], now=1)
    assert done is not None and done.sn == 2 and len(done.items) == 2
    assert len(asm) == 2


def test_sum_num_zero_completes_immediately() -> None:
    asm: CatalogAssembler[CatalogItem] = CatalogAssembler()
    done = asm.add(NVR, 9, 0, [], now=0.0)
    assert done == CatalogComplete(NVR, 9, [])


def test_timeout_counts_from_the_last_part_and_reports_missing() -> None:
    asm: CatalogAssembler[CatalogItem] = CatalogAssembler(timeout=15.0)
    assert asm.add(NVR, 3, 5, [cam(0)], now=0.0) is None
    assert asm.add(NVR, 3, 5, [cam(1), cam(2)], now=10.0) is None
    assert asm.next_deadline() == 25.0
    assert asm.expire(24.9) == []
    (inc,) = asm.expire(25.0)
    assert isinstance(inc, CatalogIncomplete)
    assert (inc.device_id, inc.sn, inc.expected, inc.received, inc.missing_count) == (
        NVR,
        3,
        5,
        3,
        2,
    )
    assert inc.reason == "timeout"
    assert [i.device_id for i in inc.items] == [cam(k).device_id for k in range(3)]
    assert asm.expire(100.0) == []
    assert len(asm) == 0 and asm.next_deadline() is None
    # a straggler after the timeout does not resurrect the catalog
    assert asm.add(NVR, 3, 5, [cam(3), cam(4)], now=30.0) is None
    assert len(asm) == 0


def test_cap_on_concurrent_assemblies_evicts_least_recent() -> None:
    asm: CatalogAssembler[CatalogItem] = CatalogAssembler(max_assemblies=2)
    asm.add("34020000001180000001", 1, 3, [cam(1)], now=0.0)
    asm.add("34020000001180000002", 1, 3, [cam(1)], now=1.0)
    asm.add("34020000001180000001", 1, 3, [cam(2)], now=2.0)  # refreshes the first
    asm.add("34020000001180000003", 1, 3, [cam(1)], now=3.0)
    assert len(asm) == 2
    assert asm.next_deadline() == float("-inf")
    (evicted,) = asm.expire(3.0)
    assert evicted.device_id == "34020000001180000002"
    assert evicted.reason == "evicted" and evicted.missing_count == 2
    assert asm.expire(3.0) == []


def test_cap_on_items_per_assembly() -> None:
    asm: CatalogAssembler[CatalogItem] = CatalogAssembler(max_items=3)
    assert asm.add(NVR, 1, 10, [cam(i) for i in range(5)], now=0.0) is None
    (inc,) = asm.expire(20.0)
    assert inc.reason == "overflow"
    assert inc.received == 3 and len(inc.items) == 3 and inc.missing_count == 7


def test_items_without_device_id_are_not_deduplicated() -> None:
    asm: CatalogAssembler[dict[str, str]] = CatalogAssembler()
    assert asm.add(NVR, 1, 3, [{"Name": "a"}, {"Name": "b"}], now=0) is None
    done = asm.add(NVR, 1, 3, [{"DeviceID": "", "Name": "c"}], now=0)
    assert done is not None and [d["Name"] for d in done.items] == ["a", "b", "c"]


def test_custom_key_for_record_items() -> None:
    asm: CatalogAssembler[m.RecordItem] = CatalogAssembler(
        key=lambda r: (r.start_time, r.end_time, r.file_path)
    )
    a = m.RecordItem(NVR, start_time="00:00", end_time="01:00")
    b = m.RecordItem(NVR, start_time="01:00", end_time="02:00")
    assert asm.add(NVR, 5, 2, [a, a], now=0) is None
    done = asm.add(NVR, 5, 2, [b], now=1)
    assert done is not None and done.items == [a, b]


def test_cancel_device() -> None:
    asm: CatalogAssembler[CatalogItem] = CatalogAssembler()
    asm.add(NVR, 1, 3, [cam(1)], now=0)
    asm.add(NVR, 2, 3, [cam(1)], now=0)
    assert asm.cancel(NVR) == 2
    assert len(asm) == 0 and asm.expire(100) == []


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError):
        CatalogAssembler(timeout=0)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 30),
    per=st.integers(1, 7),
    order=st.randoms(use_true_random=False),
    resend=st.booleans(),
)
def test_end_to_end_split_encode_decode_assemble(
    n: int, per: int, order: random.Random, resend: bool
) -> None:
    items = [cam(i) for i in range(n)]
    parts = [m.encode_catalog_response(42, NVR, n, chunk) for chunk in m.split_catalog(items, per)]
    if resend and parts:
        parts.append(parts[0])
    order.shuffle(parts)
    asm: CatalogAssembler[CatalogItem] = CatalogAssembler()
    results = []
    for t, body in enumerate(parts):
        msg = m.decode(body)
        assert msg.sum_num == n
        r = asm.add(msg.device_id, msg.sn, msg.sum_num or 0, CatalogItem.from_message(msg), t)
        if r is not None:
            results.append(r)
    assert len(results) == 1
    assert sorted(i.device_id for i in results[0].items) == [i.device_id for i in items]
    assert {i.device_id: i for i in results[0].items} == {i.device_id: i for i in items}
    assert len(asm) == 0


# ---- tree -----------------------------------------------------------------------------------------

BG = "34020000002150000001"
VO1 = "34020000002160000001"
VO2 = "34020000002160000002"
C1 = "34020000001310000001"
C2 = "34020000001310000002"
C3 = "34020000001310000003"
C4 = "34020000001310000004"
C5 = "34020000001310000005"


def test_build_tree_groups_and_channels() -> None:
    items = [
        CatalogItem(BG, name="公安局"),
        # top virtual organisation: ParentID is the platform (not listed), BusinessGroupID set
        CatalogItem(VO1, name="一楼", parent_ids=[PLATFORM], business_group_id=BG),
        CatalogItem(VO2, name="东区", parent_ids=[VO1], business_group_id=BG),
        CatalogItem(C1, parent_ids=[VO2], business_group_id=BG),
        CatalogItem(C2, parent_ids=[NVR]),  # owned by an NVR that is not listed
        CatalogItem(C3, parent_ids=["34020000002169999999", VO1]),  # 2022: several ParentIDs
        CatalogItem(C4),
        CatalogItem(C5, business_group_id=BG),
    ]
    tree = build_tree(items, root_id=PLATFORM)
    assert tree == {
        BG: PLATFORM,
        VO1: BG,
        VO2: VO1,
        C1: VO2,
        C2: NVR,
        C3: VO1,
        C4: PLATFORM,
        C5: BG,
    }
    kids = children_of(tree)
    assert kids[PLATFORM] == [BG, C4]
    assert kids[BG] == [VO1, C5]
    assert kids[VO1] == [VO2, C3]
    assert build_tree(items)[BG] is None


def test_build_tree_breaks_cycles_and_self_parents() -> None:
    a = "34020000002160000011"
    b = "34020000002160000012"
    items = [
        CatalogItem(a, parent_ids=[b]),
        CatalogItem(b, parent_ids=[a]),
        CatalogItem(C1, parent_ids=[C1]),
    ]
    tree = build_tree(items)
    assert tree[C1] is None
    assert {tree[a], tree[b]} in ({None, a}, {None, b})  # exactly one link was cut
    # no cycles remain: walking up always terminates
    for start in tree:
        seen = set()
        node: str | None = start
        while node is not None and node in tree:
            assert node not in seen
            seen.add(node)
            node = tree[node]


def test_build_tree_keeps_first_duplicate() -> None:
    items = [CatalogItem(C1, parent_ids=[VO1]), CatalogItem(C1, parent_ids=[VO2])]
    assert build_tree(items) == {C1: VO1}
