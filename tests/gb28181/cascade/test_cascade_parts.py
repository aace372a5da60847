"""Catalog parts (分包), property-tested: whatever the items, charset and budget, every part
decodes, fits the budget (or holds a single item too big to share a part), carries SumNum and
its own Num, and the parts together give back every item once, in order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xueliang.gb28181 import manscdp
from xueliang.gb28181.cascade import CatalogParts
from xueliang.gb28181.manscdp import CatalogItem

_NAME = st.text(alphabet=st.sampled_from(list("abcXYZ 0129南门广场测试点位公安局&<>\"'")), min_size=1,
                max_size=40).map(str.strip).filter(bool)
_ITEM = st.builds(
    lambda n, name, addr, lon, ev: CatalogItem(
        device_id=f"3402010000131{n:07d}", name=name, address=addr, civil_code="340201",
        parent_ids=["34020000002000000001"], status="ON", longitude=lon, event=ev),
    st.integers(0, 9_999_999), _NAME, st.one_of(st.just(""), _NAME), st.one_of(st.none(), st.floats(-180, 180)),
    st.sampled_from(["ADD", "DEL", "UPDATE", "ON", "OFF"]),
)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(_ITEM, max_size=40), budget=st.integers(200, 4000),
       charset=st.sampled_from(["GB2312", "UTF-8"]), notify=st.booleans())
def test_parts_fit_and_give_back_every_item(items: list[CatalogItem], budget: int, charset: str,
                                            notify: bool) -> None:
    root = "Notify" if notify else "Response"
    parts = CatalogParts(root=root, sn=9, device_id="34020100002000000001", items=items, charset=charset,
                         budget=budget)
    got: list[dict[str, str]] = []
    n = 0
    while (body := parts.next_part()) is not None:
        n += 1
        assert n <= len(items) + 1
        msg = manscdp.decode(body)
        assert msg.root == root and msg.cmd_type == "Catalog" and msg.sn == 9
        assert msg.sum_num == len(items) and msg.list_num == len(msg.items)
        assert len(body) <= budget or len(msg.items) <= 1, (len(body), budget)
        assert (b'encoding="UTF-8"' if charset == "UTF-8" else b'encoding="GB2312"') in body
        got += msg.items
    assert parts.done and parts.parts_written == n >= 1
    assert [g["DeviceID"] for g in got] == [i.device_id for i in items]
    for g, i in zip(got, items, strict=True):
        if not notify or i.event in ("ADD", "UPDATE"):
            assert g["Name"] == i.name
        if notify:
            assert g["Event"] == i.event


def test_a_hundred_items_in_1300_byte_datagrams_take_several_parts_each_full() -> None:
    items = [CatalogItem(device_id=f"34020100001310{i:06d}", name=f"点位{i}", civil_code="340201",
                         parent_ids=["34020100002000000001"], status="ON") for i in range(100)]
    parts = CatalogParts(root="Response", sn=1, device_id="34020100002000000001", items=items, charset="GB2312",
                         budget=900)
    sizes = []
    while (body := parts.next_part()) is not None:
        sizes.append(len(body))
    assert all(s <= 900 for s in sizes)
    assert len(sizes) < 100 / 2  # packed: more than two items a part, not one each
    # every part but the last is full: the next item would not have fit
    one = len(manscdp.encode_catalog_response(1, "34020100002000000001", 100, items[:1])) - len(
        manscdp.encode_catalog_response(1, "34020100002000000001", 100, []))
    assert all(s + one > 900 for s in sizes[:-1])


@settings(max_examples=60, deadline=None)
@given(items=st.lists(_ITEM, min_size=1, max_size=12), charset=st.sampled_from(["GB2312", "UTF-8"]),
       notify=st.booleans())
def test_a_part_is_byte_for_byte_what_writing_it_whole_gives(items: list[CatalogItem], charset: str,
                                                              notify: bool) -> None:
    from xueliang.gb28181.cascade.parts import encode_body

    root = "Notify" if notify else "Response"
    parts = CatalogParts(root=root, sn=3, device_id="34020100002000000001", items=items, charset=charset,
                         budget=10**9)
    assert parts.next_part() == encode_body(root, 3, "34020100002000000001", len(items), items, charset)
    assert parts.next_part() is None


_TEXT = st.text(alphabet=st.one_of(st.sampled_from(list("aZ09 南门广场公安局&<>\"'\r\n\t\x00\x01\ufffe😀é")),
                                   st.characters()), max_size=30)
_RICH = st.builds(
    lambda kind, n, name, maker, addr, owner, lon, lat, ptz, res, bg, ip, port, status, extra: CatalogItem(
        device_id=f"3402010000{kind}{n:07d}", name=name, manufacturer=maker, model=maker[:5], owner=owner,
        civil_code="340201", address=addr, parent_ids=["34020000002000000001"], status=status,
        longitude=lon, latitude=lat, ptz_type=ptz, resolution=res, business_group_id=bg, ip_address=ip,
        port=port, extra=extra),
    st.sampled_from(["131", "132", "215", "216"]), st.integers(0, 9_999_999), _TEXT, _TEXT, _TEXT, _TEXT,
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), st.one_of(st.none(), st.floats(-90, 90)),
    st.one_of(st.none(), st.integers(0, 9)), st.one_of(st.just(""), _TEXT),
    st.one_of(st.just(""), st.just("34020000002150000001")), st.one_of(st.just(""), st.just("10.0.0.1")),
    st.one_of(st.none(), st.integers(0, 65535)), st.sampled_from(["ON", "OFF", ""]),
    st.one_of(st.just({}), st.dictionaries(st.sampled_from(["DownloadSpeed", "SVCSpaceSupportMode", "Bad Name"]),
                                           _TEXT, max_size=2)),
)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(_RICH, min_size=1, max_size=6), charset=st.sampled_from(["GB2312", "UTF-8"]))
def test_the_direct_item_writer_is_the_writers_bytes_whatever_the_item(items: list[CatalogItem], charset: str) -> None:
    """Response items are written directly (parts.py `_response_element`), not through the
    document writer: whatever the fields (all of them, any text, groups, numbers that are not
    finite, unknown extras), the part is what the writer gives, and an item the writer refuses
    is left out the same way."""
    from xueliang.gb28181.cascade.parts import encode_body

    writable = []
    for it in items:
        try:
            encode_body("Response", 3, "34020100002000000001", 1, [it], charset)
        except manscdp.ManscdpError:
            continue
        writable.append(it)
    parts = CatalogParts(root="Response", sn=3, device_id="34020100002000000001", items=items, charset=charset,
                         budget=10**9, sum_num=len(writable))
    got = parts.next_part()
    assert got == encode_body("Response", 3, "34020100002000000001", len(writable), writable, charset)
