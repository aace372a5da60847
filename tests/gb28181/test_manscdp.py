"""MANSCDP codec: real-device style bodies, quirks, safety, encoders, round trips and fuzzing."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xueliang.gb28181 import manscdp as m
from xueliang.gb28181.manscdp import (
    Alarm,
    CatalogItem,
    DeviceInfo,
    DeviceStatus,
    Keepalive,
    ManscdpError,
    ManscdpMessage,
    MobilePosition,
    RecordItem,
)

NVR = "34020000001180000001"
CAM1 = "34020000001310000001"
CAM2 = "34020000001310000002"

HIK_CATALOG = f"""<?xml version="1.0" encoding="GB2312"?>
<Response>
<CmdType>Catalog</CmdType>
<SN>17430</SN>
<DeviceID>{NVR}</DeviceID>
<SumNum>2</SumNum>
<DeviceList Num="2">
<Item>
<DeviceID>{CAM1}</DeviceID>
<Name>西门入口</Name>
<Manufacturer>Hikvision</Manufacturer>
<Model>IP Camera</Model>
<Owner>Owner</Owner>
<CivilCode>3402000000</CivilCode>
<Address>合肥市蜀山区长江西路</Address>
<Parental>0</Parental>
<ParentID>{NVR}</ParentID>
<SafetyWay>0</SafetyWay>
<RegisterWay>1</RegisterWay>
<Secrecy>0</Secrecy>
<IPAddress>192.168.1.64</IPAddress>
<Port>8000</Port>
<Status>ON</Status>
<Longitude>117.2272</Longitude>
<Latitude>31.8206</Latitude>
<Info>
<PTZType>1</PTZType>
<Resolution>6/4</Resolution>
<DownloadSpeed>1/2/4/8</DownloadSpeed>
</Info>
</Item>
<Item>
<DeviceID>{CAM2}</DeviceID>
<Name>停车场（北）</Name>
<Manufacturer>Hikvision</Manufacturer>
<Model>IP Camera</Model>
<Owner>Owner</Owner>
<CivilCode>3402000000</CivilCode>
<Address>Address</Address>
<Parental>0</Parental>
<ParentID>{NVR}</ParentID>
<SafetyWay>0</SafetyWay>
<RegisterWay>1</RegisterWay>
<Secrecy>0</Secrecy>
<Status>OFF</Status>
</Item>
</DeviceList>
</Response>
""".replace("\n", "\r\n")

DAHUA_CATALOG = f"""<?xml version="1.0" encoding="gb2312" ?>
<response>
  <cmdtype>Catalog</cmdtype>
  <sn>9</sn>
  <deviceid>{NVR}</deviceid>
  <sumnum>1</sumnum>
  <devicelist num="1">
    <item>
      <deviceid>{CAM1}</deviceid>
      <name>一号通道</name>
      <manufacturer>Dahua</manufacturer>
      <parentid>{NVR}</parentid>
      <status>ON</status>
      <longitude>abc</longitude>
      <latitude></latitude>
      <info><ptztype>3</ptztype></info>
    </item>
  </devicelist>
</response>
"""


def test_hikvision_catalog_response_gb2312() -> None:
    msg = m.decode(HIK_CATALOG.encode("gb2312"))
    assert msg.root == "Response"
    assert msg.cmd_type == "Catalog"
    assert msg.sn == 17430
    assert msg.device_id == NVR
    assert msg.sum_num == 2 and msg.list_num == 2 and msg.list_name == "DeviceList"
    assert msg.encoding == "gb18030"
    items = CatalogItem.from_message(msg)
    assert [i.device_id for i in items] == [CAM1, CAM2]
    first = items[0]
    assert first.name == "西门入口"
    assert first.address == "合肥市蜀山区长江西路"
    assert first.manufacturer == "Hikvision"
    assert first.civil_code == "3402000000"
    assert first.parental == 0 and first.safety_way == 0 and first.register_way == 1
    assert first.secrecy == 0
    assert first.parent_ids == [NVR] and first.parent_id == NVR
    assert first.ip_address == "192.168.1.64" and first.port == 8000
    assert first.status == "ON" and first.online is True
    assert first.longitude == pytest.approx(117.2272) and first.latitude == pytest.approx(31.8206)
    assert first.ptz_type == 1
    assert first.resolution == "6/4"
    assert first.extra == {"DownloadSpeed": "1/2/4/8"}
    assert first.event is None
    assert items[1].name == "停车场（北）"
    assert items[1].online is False
    assert items[1].longitude is None and items[1].ptz_type is None


def test_dahua_lowercase_tags_are_normalised() -> None:
    msg = m.decode(DAHUA_CATALOG.encode("gbk"))
    assert msg.root == "Response" and msg.cmd_type == "Catalog" and msg.sn == 9
    assert msg.list_num == 1 and msg.sum_num == 1
    assert set(msg.items[0]) >= {"DeviceID", "Name", "ParentID", "PTZType", "Longitude"}
    (item,) = CatalogItem.from_message(msg)
    assert item.name == "一号通道"
    assert item.manufacturer == "Dahua"
    assert item.ptz_type == 3
    assert item.longitude is None  # junk tolerated
    assert item.latitude is None
    assert msg.get("sumnum") == "1" and msg.get("SUMNUM") == "1"


def test_utf8_bytes_declared_gb2312() -> None:
    msg = m.decode(HIK_CATALOG.encode("utf-8"))
    assert msg.encoding == "utf-8"
    items = CatalogItem.from_message(msg)
    assert items[0].name == "西门入口"
    assert items[1].name == "停车场（北）"


def test_utf8_short_name_declared_gb2312() -> None:
    body = f'<?xml version="1.0" encoding="GB2312"?><Notify><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>{NVR}</DeviceID><SumNum>1</SumNum><DeviceList Num="1"><Item><DeviceID>{CAM1}</DeviceID><Event>UPDATE</Event><Name>大门</Name></Item></DeviceList></Notify>'
    (item,) = CatalogItem.from_message(m.decode(body.encode("utf-8")))
    assert item.name == "大门" and item.event == "UPDATE"
    # and the same bytes really in GB2312 stay GB2312
    (item,) = CatalogItem.from_message(m.decode(body.encode("gb2312")))
    assert item.name == "大门"


def test_gbk_bytes_declared_utf8() -> None:
    body = HIK_CATALOG.replace('encoding="GB2312"', 'encoding="UTF-8"').encode("gbk")
    msg = m.decode(body)
    assert msg.encoding == "gb18030"
    assert CatalogItem.from_message(msg)[0].address == "合肥市蜀山区长江西路"


def test_gb18030_only_character_and_no_declaration() -> None:
    body = f"<Response><CmdType>Catalog</CmdType><SN>2</SN><DeviceID>{NVR}</DeviceID><SumNum>1</SumNum><DeviceList Num='1'><Item><DeviceID>{CAM1}</DeviceID><Name>𠀀号</Name></Item></DeviceList></Response>"
    msg = m.decode(body.encode("gb18030"))
    assert msg.items[0]["Name"] == "𠀀号"


def test_undecodable_bytes_replaced_not_fatal() -> None:
    body = f"<Notify><CmdType>Keepalive</CmdType><SN>5</SN><DeviceID>{NVR}</DeviceID><Status>OK\xff\x80</Status></Notify>"
    msg = m.decode(body.encode("latin-1"))
    assert msg.cmd_type == "Keepalive" and msg.fields["Status"].startswith("OK")


def test_2022_item_with_several_parent_ids_and_extras() -> None:
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<Response><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>34020000002000000001</DeviceID>
<SumNum>1</SumNum><DeviceList Num="1"><Item>
<DeviceID>{CAM1}</DeviceID><Name>Gate</Name>
<ParentID>34020000002160000001/34020000002160000002/{NVR}</ParentID>
<BusinessGroupID>34020000002150000001</BusinessGroupID>
<SecurityLevelCode>2</SecurityLevelCode><RecordSaveDays>90</RecordSaveDays>
<Info><PTZType>4</PTZType><PointType>1</PointType><CapturePositionType>3</CapturePositionType></Info>
</Item></DeviceList></Response>"""
    (item,) = CatalogItem.from_message(m.decode(body.encode()))
    assert item.parent_ids == ["34020000002160000001", "34020000002160000002", NVR]
    assert item.business_group_id == "34020000002150000001"
    assert item.ptz_type == 4
    assert item.extra == {
        "SecurityLevelCode": "2",
        "RecordSaveDays": "90",
        "PointType": "1",
        "CapturePositionType": "3",
    }


def test_repeated_parent_id_elements_are_joined() -> None:
    body = f"<Response><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>{NVR}</DeviceID><SumNum>1</SumNum><DeviceList Num='1'><Item><DeviceID>{CAM1}</DeviceID><ParentID>A1</ParentID><ParentID>B2</ParentID></Item></DeviceList></Response>"
    (item,) = CatalogItem.from_message(m.decode(body))
    assert item.parent_ids == ["A1", "B2"]


def test_keepalive_with_stray_bytes_and_nuls() -> None:
    body = (
        b"\xef\xbb\xbf\r\n garbage\x00"
        + f'<?xml version="1.0"?>\n<Notify>\n<CmdType>Keepalive</CmdType>\n<SN>43</SN>\n<DeviceID>{NVR}</DeviceID>\n<Status>OK</Status>\n</Notify>'.encode()
        + b"\x00\x00\r\n\xff\xfe trailing junk <x"
    )
    msg = m.decode(body)
    ka = Keepalive.from_message(msg)
    assert ka == Keepalive(device_id=NVR, sn=43, status="OK")
    assert ka.ok
    assert msg.root == "Notify"
    assert not Keepalive(NVR, 1, "ERROR").ok


def test_bare_ampersand_in_name_is_tolerated() -> None:
    body = f"<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>{NVR}</DeviceID><SumNum>1</SumNum><DeviceList Num='1'><Item><DeviceID>{CAM1}</DeviceID><Name>R&D 楼 &amp; A&B &#20013;</Name></Item></DeviceList></Response>"
    (item,) = CatalogItem.from_message(m.decode(body.encode("gbk")))
    assert item.name == "R&D 楼 & A&B 中"


def test_control_characters_and_namespace_are_tolerated() -> None:
    body = f'<ns:Notify xmlns:ns="urn:x"><ns:CmdType>Keepalive</ns:CmdType><ns:SN>1</ns:SN><ns:DeviceID>{NVR}</ns:DeviceID><ns:Status>O\x01K</ns:Status></ns:Notify>'
    msg = m.decode(body.encode())
    assert msg.root == "Notify" and msg.fields["Status"] == "OK"


def test_alarm_notify() -> None:
    body = f"""<?xml version="1.0" encoding="GB2312"?>
<Notify>
<CmdType>Alarm</CmdType>
<SN>8</SN>
<DeviceID>{CAM1}</DeviceID>
<AlarmPriority>1</AlarmPriority>
<AlarmMethod>5</AlarmMethod>
<AlarmTime>2024-05-01T12:30:00</AlarmTime>
<AlarmDescription>移动侦测报警</AlarmDescription>
<Longitude>117.1</Longitude>
<Latitude>31.8</Latitude>
<Info><AlarmType>2</AlarmType><AlarmTypeParam><EventType>1</EventType></AlarmTypeParam></Info>
</Notify>"""
    alarm = Alarm.from_message(m.decode(body.encode("gb2312")))
    assert alarm.device_id == CAM1
    assert (alarm.priority, alarm.method, alarm.alarm_type, alarm.event_type) == (1, 5, 2, 1)
    assert alarm.time == "2024-05-01T12:30:00"
    assert alarm.description == "移动侦测报警"
    assert alarm.longitude == pytest.approx(117.1) and alarm.latitude == pytest.approx(31.8)


def test_record_info_response() -> None:
    body = f"""<?xml version="1.0" encoding="GB2312"?>
<Response><CmdType>RecordInfo</CmdType><SN>77</SN><DeviceID>{CAM1}</DeviceID><Name>Camera 01</Name>
<SumNum>5</SumNum><RecordList Num="2">
<Item><DeviceID>{CAM1}</DeviceID><Name>Camera 01</Name><FilePath>ch01_20240501</FilePath><Address>Address 1</Address>
<StartTime>2024-05-01T00:00:00</StartTime><EndTime>2024-05-01T01:00:00</EndTime><Secrecy>0</Secrecy><Type>time</Type>
<RecorderID>{NVR}</RecorderID><FileSize>1073741824</FileSize></Item>
<Item><DeviceID>{CAM1}</DeviceID><StartTime>2024-05-01T01:00:00</StartTime><EndTime>2024-05-01T02:00:00</EndTime><Type>alarm</Type></Item>
</RecordList></Response>"""
    msg = m.decode(body.encode("gb2312"))
    assert msg.sum_num == 5 and msg.list_num == 2 and msg.list_name == "RecordList"
    recs = RecordItem.from_message(msg)
    assert recs[0].file_path == "ch01_20240501"
    assert recs[0].file_size == 1073741824 and recs[0].secrecy == 0
    assert recs[0].recorder_id == NVR and recs[0].type == "time"
    assert recs[1].start_time == "2024-05-01T01:00:00" and recs[1].file_size is None
    with pytest.raises(ManscdpError, match="expected CmdType Catalog"):
        CatalogItem.from_message(msg)


def test_device_info_and_status_and_mobile_position() -> None:
    info = DeviceInfo.from_message(
        m.decode(
            m.encode_device_info_response(
                4,
                NVR,
                device_name="NVR-大厅",
                manufacturer="Hikvision",
                model="DS-7808N",
                firmware="V4.1.50",
                channel=8,
            )
        )
    )
    assert info.device_name == "NVR-大厅"
    assert info.result == "OK" and info.channel == 8 and info.model == "DS-7808N"
    assert info.firmware == "V4.1.50" and info.max_camera is None

    status = DeviceStatus.from_message(
        m.decode(
            m.encode_device_status_response(
                5,
                NVR,
                online=True,
                encode=True,
                record=False,
                device_time="2024-05-01T00:00:00",
                alarm_status=[(CAM1, "ONDUTY"), (CAM2, "ALARM")],
            )
        )
    )
    assert status.is_online is True and status.is_ok is True
    assert status.encode == "ON" and status.record == "OFF"
    assert status.device_time == "2024-05-01T00:00:00"
    assert status.alarm_status == [
        {"DeviceID": CAM1, "DutyStatus": "ONDUTY"},
        {"DeviceID": CAM2, "DutyStatus": "ALARM"},
    ]
    offline = DeviceStatus.from_message(
        m.decode(m.encode_device_status_response(6, NVR, online=False))
    )
    assert offline.is_online is False

    pos = MobilePosition.from_message(
        m.decode(
            m.encode_mobile_position(
                7,
                "34020000001380000001",
                time="2024-05-01T08:00:00",
                longitude=117.25,
                latitude=31.5,
                speed=30.5,
                direction=90.0,
            )
        )
    )
    assert (pos.longitude, pos.latitude, pos.speed, pos.direction) == (117.25, 31.5, 30.5, 90.0)
    assert pos.altitude is None


# ---- safety ---------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0" encoding="GB2312"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>&lol9;</DeviceID></Notify>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>&xxe;</DeviceID></Notify>"""


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        b'<?xml version="1.0"?><!doctype Notify SYSTEM "http://example.invalid/x.dtd"><Notify/>',
        b"<?xml version='1.0'?><!DOC\x00TYPE x [<!ENTITY a 'b'>]><Notify/>",
        b"<?xml version='1.0'?><!DOC\x01TYPE x [<!ENTITY a 'b'>]><Notify><CmdType>a</CmdType></Notify>",
    ],
)
def test_doctype_and_entities_refused(body: bytes) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ManscdpError) as ei:
        m.decode(body)
    assert "DOCTYPE" in ei.value.reason
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("text", [
    BILLION_LAUGHS.decode(), EXTERNAL_ENTITY.decode(), '<!doctype Notify SYSTEM "x.dtd"><Notify/>',
    '<Notify><CmdType>Keepalive</CmdType></Notify><!ENTITY a "b">', '<!  ELEMENT Notify ANY><Notify/>',
])
def test_the_text_parsed_is_the_text_checked(text: str) -> None:
    """The XML parser is expat without defusedxml's guards: the check in front of it is all
    there is, so it must see the very text the parser would (after decoding and clean-up),
    whatever bytes and codec carried it there."""
    from xueliang.gb28181.manscdp.document import _parse_tree

    with pytest.raises(ManscdpError, match="DOCTYPE"):
        _parse_tree(text)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (b"hello world", "no XML root"),
        (b"<Foo><CmdType>Catalog</CmdType></Foo>", "unknown root"),
        (b"<Query><SN>1</SN></Query>", "no CmdType"),
        (b"<Query><CmdType>Catalog</CmdType><SN>abc</SN></Query>", "SN"),
        (b"<Query><CmdType>Catalog</CmdType><SN>-4</SN></Query>", "SN"),
        (b"<Query><CmdType>Catalog</CmdType><SN>1</SN>", "malformed XML"),
        (b"<Query><CmdType>Cat<alog</CmdType></Query>", "malformed XML"),
    ],
)
def test_clear_errors(body: bytes, fragment: str) -> None:
    with pytest.raises(ManscdpError) as ei:
        m.decode(body)
    assert fragment in ei.value.reason


def test_body_size_limit() -> None:
    with pytest.raises(ManscdpError, match="too large"):
        m.decode(b"<Query>" + b" " * (m.MAX_BODY_BYTES + 1) + b"</Query>")


def test_missing_sn_is_zero_and_missing_fields_fine() -> None:
    msg = m.decode(b"<Notify><CmdType>keepalive</CmdType></Notify>")
    assert msg.sn == 0 and msg.device_id == "" and msg.cmd_type == "Keepalive"
    assert Keepalive.from_message(msg).status == ""


# ---- encoders ---------------------------------------------------------------------------------


def test_encoded_gb2312_declaration_and_gbk_bytes() -> None:
    item = CatalogItem(CAM1, name="西门入口 & <东侧>\r尾", status="ON")
    body = m.encode_catalog_response(12, NVR, 1, [item])
    assert body.startswith(b'<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n')
    assert "西门入口".encode("gb2312") in body
    assert "西门入口".encode() not in body
    assert b"&amp; &lt;\xb6\xab\xb2\xe0&gt;&#13;" in body  # 东侧 in GB2312
    assert b'<DeviceList Num="1">' in body and b"<SumNum>1</SumNum>" in body
    (back,) = CatalogItem.from_message(m.decode(body))
    assert back == item


def test_encode_utf8_option() -> None:
    body = m.encode_keepalive(3, NVR, encoding="UTF-8")
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    msg = m.decode(body)
    assert (msg.root, msg.cmd_type, msg.sn, msg.device_id) == ("Notify", "Keepalive", 3, NVR)
    assert msg.fields["Status"] == "OK"
    named = m.encode_catalog_response(1, NVR, 1, [CatalogItem(CAM1, name="大门")], encoding="UTF-8")
    assert "大门".encode() in named
    with pytest.raises(ManscdpError, match="encoding"):
        m.encode_keepalive(1, NVR, encoding="rot13")


def test_encode_query_and_control() -> None:
    q = m.decode(
        m.encode_query(
            "RecordInfo",
            20,
            CAM1,
            StartTime="2024-05-01T00:00:00",
            EndTime="2024-05-01T23:59:59",
            Type="all",
            Secrecy=0,
        )
    )
    assert q.root == "Query" and q.cmd_type == "RecordInfo" and q.sn == 20
    assert q.fields["StartTime"] == "2024-05-01T00:00:00" and q.fields["Type"] == "all"
    assert q.fields["Secrecy"] == "0"

    ptz_body = m.encode_control(21, CAM1, PTZCmd="A50F0100000000B5", Info={"ControlPriority": 5})
    assert b"<PTZCmd>A50F0100000000B5</PTZCmd>" in ptz_body
    c = m.decode(ptz_body)
    assert c.root == "Control" and c.cmd_type == "DeviceControl"
    assert c.fields["PTZCmd"] == "A50F0100000000B5" and c.fields["ControlPriority"] == "5"
    assert m.decode(m.encode_control(22, CAM1, TeleBoot="Boot")).fields["TeleBoot"] == "Boot"
    assert m.decode(m.encode_control(23, CAM1, IFameCmd="Send")).fields["IFameCmd"] == "Send"
    assert m.decode(m.encode_control(24, CAM1, IFrameCmd="Send")).fields["IFrameCmd"] == "Send"
    assert m.decode(m.encode_control(25, CAM1, RecordCmd="Record")).fields["RecordCmd"] == "Record"
    assert (
        m.decode(m.encode_control(26, CAM1, GuardCmd="SetGuard")).fields["GuardCmd"] == "SetGuard"
    )
    reset = m.decode(m.encode_control(27, CAM1, AlarmCmd="ResetAlarm", Info={"AlarmMethod": 2}))
    assert reset.fields["AlarmCmd"] == "ResetAlarm" and reset.fields["AlarmMethod"] == "2"
    with pytest.raises(ManscdpError, match="element name"):
        m.encode_control(1, CAM1, **{"bad name": "x"})
    with pytest.raises(ManscdpError, match="SN"):
        m.encode_query("Catalog", -1, CAM1)


def test_encode_response_result() -> None:
    ok = m.decode(m.encode_response_result("DeviceControl", 9, CAM1, True))
    assert (ok.root, ok.cmd_type, ok.sn, ok.fields["Result"]) == (
        "Response",
        "DeviceControl",
        9,
        "OK",
    )
    assert m.decode(m.encode_response_result("Catalog", 9, CAM1, False)).fields["Result"] == "ERROR"


def test_encode_alarm_and_media_status() -> None:
    body = m.encode_alarm_notify(
        31,
        CAM1,
        priority=2,
        method=5,
        time="2024-05-01T12:00:00",
        description="区域入侵",
        alarm_type=6,
        event_type=1,
    )
    alarm = Alarm.from_message(m.decode(body))
    assert (alarm.priority, alarm.method, alarm.alarm_type, alarm.event_type) == (2, 5, 6, 1)
    assert alarm.description == "区域入侵"
    ms = m.decode(m.encode_media_status(32, CAM1))
    assert ms.cmd_type == "MediaStatus" and ms.fields["NotifyType"] == "121"


def test_encode_catalog_notify_events() -> None:
    full = CatalogItem(CAM1, name="新增", status="ON", event="ADD", ptz_type=1)
    gone = CatalogItem(CAM2, name="should not be sent", event="DEL")
    body = m.encode_catalog_notify(40, NVR, [full, gone])
    msg = m.decode(body)
    assert msg.root == "Notify" and msg.sum_num == 2 and msg.list_num == 2
    assert msg.items[1] == {"DeviceID": CAM2, "Event": "DEL"}
    items = CatalogItem.from_message(msg)
    assert items[0] == full
    assert items[1].event == "DEL" and items[1].name == ""
    off = m.decode(m.encode_catalog_notify(41, NVR, [CatalogItem(CAM1)], event="off"))
    assert off.items == [{"DeviceID": CAM1, "Event": "OFF"}]
    with pytest.raises(ManscdpError, match="Event"):
        m.encode_catalog_notify(42, NVR, [CatalogItem(CAM1)])


def test_group_items_put_business_group_at_top_level() -> None:
    vo = CatalogItem("34020000002160000001", name="一楼", business_group_id="34020000002150000001")
    cam = CatalogItem(CAM1, business_group_id="34020000002150000001")
    body = m.encode_catalog_response(1, NVR, 2, [vo, cam]).decode("gb18030")
    vo_part, cam_part = body.split("<Item>")[1:]
    assert "<BusinessGroupID>" in vo_part.split("<Info>")[0]
    assert "<Info>\r\n<BusinessGroupID>" in cam_part
    assert CatalogItem.from_message(m.decode(body.encode("gb18030"))) == [vo, cam]


def test_split_catalog() -> None:
    assert m.split_catalog([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert m.split_catalog([1, 2], 1) == [[1], [2]]
    assert m.split_catalog([1, 2], 10) == [[1, 2]]
    assert m.split_catalog([], 3) == [[]]
    with pytest.raises(ValueError):
        m.split_catalog([1], 0)


# ---- property tests ------------------------------------------------------------------------------

_COMMON_HANZI = bytes(
    b for hi in range(0xB0, 0xD8) for lo in range(0xA1, 0xFF) for b in (hi, lo)
).decode("gb2312", errors="ignore")
_GB_ALPHABET = _COMMON_HANZI + "abcXYZ0123456789 -_.()&<>'\"（）、，·号楼"


def _clean(s: str) -> bool:
    return s == s.strip(" ")


gb_text = st.text(alphabet=_GB_ALPHABET, max_size=12).filter(_clean)
any_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=12,
).filter(_clean)
gb_ids = st.text(alphabet="0123456789", min_size=20, max_size=20)
small_ints = st.none() | st.integers(0, 99999)
coords = st.none() | st.floats(-180, 180, allow_nan=False, allow_infinity=False)
EXTRA_NAMES = [
    "SecurityLevelCode",
    "RecordSaveDays",
    "ManagementUnit",
    "PointType",
    "DownloadSpeed",
]


def catalog_items(text: st.SearchStrategy[str]) -> st.SearchStrategy[CatalogItem]:
    return st.builds(
        CatalogItem,
        device_id=gb_ids,
        name=text,
        manufacturer=text,
        model=text,
        owner=text,
        civil_code=st.text(alphabet="0123456789", max_size=8),
        address=text,
        parental=st.none() | st.integers(0, 1),
        parent_ids=st.lists(gb_ids, max_size=3),
        safety_way=small_ints,
        register_way=small_ints,
        secrecy=small_ints,
        ip_address=st.ip_addresses().map(str) | st.just(""),
        port=st.none() | st.integers(0, 65535),
        status=st.sampled_from(["ON", "OFF", ""]),
        longitude=coords,
        latitude=coords,
        ptz_type=st.none() | st.integers(1, 4),
        resolution=st.sampled_from(["", "6/4", "5"]),
        business_group_id=gb_ids | st.just(""),
        event=st.none() | st.sampled_from(["ON", "OFF", "VLOST", "DEFECT", "ADD", "DEL", "UPDATE"]),
        extra=st.dictionaries(st.sampled_from(EXTRA_NAMES), text, max_size=3),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(catalog_items(gb_text), max_size=4), st.integers(0, 2**31))
def test_catalog_round_trip_gb2312(items: list[CatalogItem], sn: int) -> None:
    body = m.encode_catalog_response(sn, NVR, len(items), items)
    msg = m.decode(body)
    assert msg.sn == sn and msg.sum_num == len(items) and msg.list_num == len(items)
    assert CatalogItem.from_message(msg) == items


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(catalog_items(any_text), max_size=4), st.sampled_from(["UTF-8", "GB18030"]))
def test_catalog_round_trip_any_text(items: list[CatalogItem], encoding: str) -> None:
    body = m.encode_catalog_response(1, NVR, len(items), items, encoding=encoding)
    assert CatalogItem.from_message(m.decode(body)) == items


@settings(max_examples=80, deadline=None)
@given(any_text, any_text, st.integers(1, 4), st.integers(1, 7))
def test_alarm_round_trip(desc: str, time_s: str, priority: int, method: int) -> None:
    body = m.encode_alarm_notify(
        1, CAM1, priority=priority, method=method, time=time_s, description=desc, encoding="UTF-8"
    )
    alarm = Alarm.from_message(m.decode(body))
    assert (alarm.priority, alarm.method, alarm.time, alarm.description) == (
        priority,
        method,
        time_s,
        desc,
    )


# ---- fuzzing: only ManscdpError may escape ----------------------------------------------------------

_SEEDS = [
    HIK_CATALOG.encode("gb2312"),
    DAHUA_CATALOG.encode("gbk"),
    HIK_CATALOG.encode("utf-8"),
    BILLION_LAUGHS,
    m.encode_alarm_notify(1, CAM1, priority=1, method=2, time="t", alarm_type=1, event_type=2),
    m.encode_device_status_response(1, NVR, alarm_status=[(CAM1, "ONDUTY")]),
    m.encode_record_info_response(1, CAM1, 1, [RecordItem(CAM1, name="录像")]),
]

_VIEWS = {
    "Catalog": CatalogItem.from_message,
    "RecordInfo": RecordItem.from_message,
    "DeviceInfo": DeviceInfo.from_message,
    "DeviceStatus": DeviceStatus.from_message,
    "Alarm": Alarm.from_message,
    "MobilePosition": MobilePosition.from_message,
    "Keepalive": Keepalive.from_message,
}


def _decode_only_manscdp_error(data: bytes) -> None:
    try:
        msg = m.decode(data)
    except ManscdpError as exc:
        assert exc.reason
        return
    assert isinstance(msg, ManscdpMessage)
    assert msg.root in m.ROOTS and msg.cmd_type and msg.sn >= 0
    view = _VIEWS.get(msg.cmd_type)
    if view is not None:
        view(msg)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    _decode_only_manscdp_error(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"<",
                        b">",
                        b"&",
                        b"\x00",
                        b"</Item>",
                        b"<Item>",
                        b"\xff\xfe",
                        b"<!--",
                        b"]]>",
                        b"&#0;",
                        b"&#x110000;",
                    ]
                )
            )
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 50))]
    return bytes(data)


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_fuzz_mutated_bodies(data: bytes) -> None:
    _decode_only_manscdp_error(data)


def test_fuzz_random_text_inputs() -> None:
    rng = random.Random(28181)
    pieces = [
        "<Notify>",
        "</Notify>",
        "<CmdType>",
        "</CmdType>",
        "<SN>",
        "</SN>",
        "Keepalive",
        "<Item>",
        "</Item>",
        "<DeviceList Num='x'>",
        "</DeviceList>",
        "&",
        "<",
        "中",
        "\ud800",
        "<?xml",
        "?>",
        "encoding='gbk'",
    ]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 20)))
        try:
            msg = m.decode(text)
        except ManscdpError:
            continue
        assert msg.root == "Notify"


def test_deep_nesting_is_bounded() -> None:
    depth = 5000
    body = (
        b"<Notify><CmdType>Keepalive</CmdType><SN>1</SN>"
        + b"<Info>" * depth
        + b"<X>1</X>"
        + b"</Info>" * depth
        + b"</Notify>"
    )
    msg = m.decode(body)
    assert msg.cmd_type == "Keepalive"
    assert "X" not in msg.fields  # beyond the flattening depth


# -- DeviceConfig sections (what an upper's DeviceConfig forwards) ------------------------------


def _config(sections: str, root: str = "Control") -> bytes:
    return (f'<?xml version="1.0" encoding="GB2312"?><{root}><CmdType>DeviceConfig</CmdType><SN>1</SN>'
            f"<DeviceID>34020000001320000001</DeviceID>{sections}</{root}>").encode("gb2312")


def test_config_sections_keep_nesting_and_repeated_items_and_round_trip() -> None:
    body = _config("<BasicParam><Name>南门</Name></BasicParam><SVACDecodeConfig><SVCParam><SVCSTMMode>1</SVCSTMMode>"
                   "</SVCParam><SurveillanceParam><TimeShowFlag>1</TimeShowFlag></SurveillanceParam></SVACDecodeConfig>"
                   "<PictureMask><On>1</On><SumNum>2</SumNum><RegionList><Item><Seq>1</Seq></Item>"
                   "<Item><Seq>2</Seq></Item></RegionList></PictureMask>")
    got = m.config_sections(body)
    assert got == {"BasicParam": {"Name": "南门"},
                   "SVACDecodeConfig": {"SVCParam": {"SVCSTMMode": "1"}, "SurveillanceParam": {"TimeShowFlag": "1"}},
                   "PictureMask": {"On": "1", "SumNum": "2", "RegionList": {"Item": [{"Seq": "1"}, {"Seq": "2"}]}}}
    again = m.encode_control(9, "34020000001320000001", cmd_type="DeviceConfig", encoding="UTF-8", **got)
    assert m.config_sections(again) == got


@pytest.mark.parametrize(("sections", "root", "why"), [
    ("<VideoParamOpt><A>1</A></VideoParamOpt>", "Query", "is a <Control>"),
    ("<VideoParamOpt>x</VideoParamOpt>", "Control", "holds no elements"),
    ("<VideoParamOpt><A>1</A></VideoParamOpt><VideoParamOpt><A>2</A></VideoParamOpt>", "Control", "given twice"),
    ("<OSDConfig>" + "<A>1</A>" * 300 + "</OSDConfig>", "Control", "more than 256"),
    ("<OSDConfig><Text>" + "x" * 300 + "</Text></OSDConfig>", "Control", "longer than 256"),
    ("<OSDConfig>" + "<A>" * 7 + "1" + "</A>" * 7 + "</OSDConfig>", "Control", "deeper than 6"),
    ("<OSDConfig><A>1</OSDConfig>", "Control", "malformed XML"),
])
def test_config_sections_refuse_what_is_no_configuration(sections: str, root: str, why: str) -> None:
    with pytest.raises(m.ManscdpError, match=why):
        m.config_sections(_config(sections, root))


def test_config_sections_refuse_entities_and_only_raise_manscdp_errors() -> None:
    with pytest.raises(m.ManscdpError, match="DOCTYPE"):
        m.config_sections(b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><Control><A><B>&x;</B></A></Control>')
    rng = random.Random(15)
    good = _config("<VideoParamOpt><DownloadSpeed>1/2</DownloadSpeed></VideoParamOpt>")
    for _ in range(500):
        data = bytearray(good)
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            m.config_sections(bytes(data))
        except m.ManscdpError:
            pass
