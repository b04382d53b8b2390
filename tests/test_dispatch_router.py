"""Routers: the straight-line default and a road graph from OSM XML or GraphML."""

from __future__ import annotations

import networkx as nx
import pytest

from dispatch.model import Point
from dispatch.router import GraphRouter, RouterError, StraightLineRouter, load_road_graph, make_router

# A square of roads, 0.01 degree a side, with a one-way diagonal shortcut from A to C.
OSM = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
  <node id="1" lat="32.980" lon="130.430"/>
  <node id="2" lat="32.990" lon="130.430"/>
  <node id="3" lat="32.990" lon="130.440"/>
  <node id="4" lat="32.980" lon="130.440"/>
  <node id="9" lat="32.985" lon="130.435"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/><tag k="highway" v="residential"/></way>
  <way id="11"><nd ref="1"/><nd ref="3"/><tag k="highway" v="primary"/><tag k="oneway" v="yes"/></way>
  <way id="12"><nd ref="9"/><nd ref="2"/><tag k="waterway" v="stream"/></way>
</osm>
"""
A, B, C = Point(32.980, 130.430), Point(32.990, 130.430), Point(32.990, 130.440)


def test_straight_line_router_scales_distance_and_time():
    router = StraightLineRouter(speed_kmh=30.0, detour_factor=1.3)
    km, seconds = router.leg(A, B)
    assert km == pytest.approx(0.01 * 111.195 * 1.3, rel=1e-3)
    assert seconds == pytest.approx(km / 30.0 * 3600)
    assert router.leg(A, A) == (0.0, 0.0)


def test_osm_graph_uses_the_oneway_shortcut_only_forwards(tmp_path):
    path = tmp_path / "roads.osm"
    path.write_text(OSM)
    router = make_router(30.0, 1.3, path)
    assert isinstance(router, GraphRouter)
    forward_km, _ = router.leg(A, C)
    back_km, back_s = router.leg(C, A)
    plain = StraightLineRouter(30.0, 1.0)
    around_km = plain.leg(C, B)[0] + plain.leg(B, A)[0]
    assert forward_km == pytest.approx(plain.leg(A, C)[0], rel=1e-6)  # the diagonal
    assert back_km == pytest.approx(around_km, rel=1e-6)  # round the square
    assert back_s == pytest.approx(back_km / 30.0 * 3600)
    assert "9" not in router.graph  # the stream is not a road


def test_graphml_lengths_are_used(tmp_path):
    graph = nx.Graph()
    graph.add_node("a", y=32.98, x=130.43)
    graph.add_node("b", y=32.99, x=130.43)
    graph.add_edge("a", "b", length=2500.0)  # metres, as OSMnx writes them
    path = tmp_path / "roads.graphml"
    nx.write_graphml(graph, path)
    router = make_router(40.0, 1.3, path)
    km, seconds = router.leg(A, B)
    assert km == pytest.approx(2.5)
    assert seconds == pytest.approx(2.5 / 40.0 * 3600)


def test_bad_graph_files_are_named(tmp_path):
    with pytest.raises(RouterError, match="no such road graph file"):
        load_road_graph(tmp_path / "missing.osm")
    broken = tmp_path / "broken.osm"
    broken.write_text("<osm><node id='1'")
    with pytest.raises(RouterError, match="broken.osm: not valid OSM XML"):
        load_road_graph(broken)
    wrong = tmp_path / "roads.shp"
    wrong.write_text("x")
    with pytest.raises(RouterError, match="unknown road graph format"):
        load_road_graph(wrong)
