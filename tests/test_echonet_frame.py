"""The ECHONET Lite frame codec: round trips over every field, and malformed datagrams refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.echonet.frame import (
    Eoj,
    Esv,
    Frame,
    FrameError,
    Property,
    encode_instance_list,
    instance_list,
    parse,
    signed,
    to_signed,
    to_unsigned,
    unsigned,
)

eojs = st.builds(Eoj, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
props = st.builds(Property, st.integers(0, 255), st.binary(max_size=255))
frames = st.builds(
    Frame,
    st.integers(0, 0xFFFF),
    eojs,
    eojs,
    st.sampled_from([e.value for e in Esv]),
    st.lists(props, max_size=12).map(tuple),
)


@settings(max_examples=60)
@given(frames)
def test_frame_round_trip(frame: Frame):
    assert parse(frame.to_bytes()) == frame


@settings(max_examples=40)
@given(frames)
def test_layout_is_the_specifications(frame: Frame):
    data = frame.to_bytes()
    assert data[:2] == b"\x10\x81"
    assert int.from_bytes(data[2:4], "big") == frame.tid
    assert data[4:7] == frame.seoj.to_bytes() and data[7:10] == frame.deoj.to_bytes()
    assert data[10] == frame.esv and data[11] == len(frame.properties)
    assert len(data) == 12 + sum(2 + len(p.edt) for p in frame.properties)


def test_a_known_get_frame_byte_for_byte():
    # Get of the V2H unit's SoC (EPC 0xE4) from a controller, TID 1 (spec part II, figure 3-1 layout)
    frame = Frame(1, Eoj(0x05, 0xFF, 1), Eoj.of(0x027E), Esv.GET, (Property(0xE4),))
    assert frame.to_bytes() == bytes.fromhex("1081 0001 05FF01 027E01 62 01 E4 00")


@settings(max_examples=40)
@given(frames, st.integers(1, 40))
def test_truncated_frames_are_refused(frame: Frame, cut: int):
    data = frame.to_bytes()
    with pytest.raises(FrameError):
        parse(data[: max(0, len(data) - cut)])


@pytest.mark.parametrize(
    "data, words",
    [
        (bytes.fromhex("1082 0001 05FF01 027E01 62 00"), "EHD2"),
        (bytes.fromhex("2081 0001 05FF01 027E01 62 00"), "EHD1"),
        (bytes.fromhex("1081 0001 05FF01 027E01 62 01 E4 05 00"), "PDC 5 runs past"),
        (bytes.fromhex("1081 0001 05FF01 027E01 62 00 E4"), "after the last property"),
        (bytes.fromhex("1081 0001 05FF01 027E01 6E 00"), "SetGet"),
        (bytes.fromhex("1081 0001"), "at least 12"),
    ],
)
def test_malformed_frames_name_the_fault(data: bytes, words: str):
    with pytest.raises(FrameError, match=words):
        parse(data)


@given(st.integers(-(2**31) + 1, 2**31 - 3))
def test_signed_round_trip(value: int):
    assert signed(to_signed(value, 4)) == value


@given(st.integers(0, 2**32 - 3))
def test_unsigned_round_trip(value: int):
    assert unsigned(to_unsigned(value, 4)) == value


def test_no_data_codes_read_as_none():
    assert unsigned(b"\xff\xff\xff\xff") is None and unsigned(b"\xff\xfe") is None
    assert signed(b"\x7f\xff\xff\xff") is None and signed(b"\x80\x00\x00\x00") is None
    assert unsigned(b"") is None


@settings(max_examples=40)
@given(st.lists(eojs, max_size=80))
def test_instance_list_round_trip(objects):
    assert instance_list(encode_instance_list(objects)) == objects


def test_oversized_property_is_refused_when_encoding():
    with pytest.raises(FrameError, match="PDC holds at most 255"):
        Frame(1, Eoj(5, 0xFF), Eoj(2, 0x7E), Esv.SETC, (Property(0xEB, bytes(256)),)).to_bytes()
