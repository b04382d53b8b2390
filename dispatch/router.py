"""Travel time and distance between points.

:class:`StraightLineRouter` (default): great-circle distance times a detour factor, driven at a
constant speed. :class:`GraphRouter`: shortest paths on a road graph read from GraphML or OSM
XML with networkx; points snap to the nearest graph node. Both cache what repeats: legs between
the same two points, node snapping and single-source shortest-path trees.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import networkx as nx
import numpy as np

from dispatch.model import Point
from ems.fleet import geo


class RouterError(ValueError):
    """A road graph file cannot be used; the message names the file and the problem."""


class Router(Protocol):
    """``speed_kmh`` and ``min_road_factor`` (road over straight-line distance, at least) give
    a cheap lower bound of travel time used to prune vehicles that are too far away."""

    speed_kmh: float
    min_road_factor: float

    def leg(self, a: Point, b: Point) -> tuple[float, float]:
        """(distance [km], travel time [s]) from ``a`` to ``b``."""


def great_circle_km(a: Point, b: Point) -> float:
    """``ems.fleet.geo.great_circle_km`` between two dispatcher points [km]."""
    return geo.great_circle_km(a.lat, a.lon, b.lat, b.lon)


class StraightLineRouter:
    """Road distance = straight line x ``detour_factor``; time = distance / ``speed_kmh``."""

    def __init__(self, speed_kmh: float, detour_factor: float, cache_size: int = 500_000):
        if speed_kmh <= 0 or detour_factor < 1:
            raise ValueError("speed_kmh must be positive and detour_factor at least 1")
        self.speed_kmh = speed_kmh
        self.detour_factor = detour_factor
        self.min_road_factor = detour_factor
        self.leg = lru_cache(maxsize=cache_size)(self._leg)  # type: ignore[method-assign]

    def _leg(self, a: Point, b: Point) -> tuple[float, float]:
        km = great_circle_km(a, b) * self.detour_factor
        return km, km / self.speed_kmh * 3600.0


class GraphRouter:
    """Shortest road paths on a networkx graph whose nodes carry ``lat``/``lon`` (or ``y``/``x``).

    Edge length is the ``length`` attribute in metres when present (OSMnx GraphML), otherwise the
    great-circle length between its nodes. Travel time uses ``speed_kmh``; the time to and from
    the snapped nodes is added at the same speed so nearby points are not free.
    """

    def __init__(self, graph: nx.Graph, speed_kmh: float, source: str = "<graph>", cache_size: int = 200_000):
        if graph.number_of_nodes() == 0:
            raise RouterError(f"{source}: the road graph has no nodes")
        self.source = source
        self.speed_kmh = speed_kmh
        self.min_road_factor = 1.0  # a road is never shorter than the straight line
        self.graph = _weighted(graph, source)
        self.node_ids = list(self.graph.nodes)
        coords = [self.graph.nodes[n]["point"] for n in self.node_ids]
        self._lat = np.radians([c.lat for c in coords])
        self._lon = np.radians([c.lon for c in coords])
        self.snap = lru_cache(maxsize=cache_size)(self._snap)  # type: ignore[method-assign]
        self._tree = lru_cache(maxsize=4096)(self._shortest_from)
        self.leg = lru_cache(maxsize=cache_size)(self._leg)  # type: ignore[method-assign]

    def _snap(self, p: Point) -> tuple[object, float]:
        lat, lon = math.radians(p.lat), math.radians(p.lon)
        x = (self._lon - lon) * math.cos(lat)
        y = self._lat - lat
        index = int(np.argmin(x * x + y * y))
        node = self.node_ids[index]
        return node, great_circle_km(p, self.graph.nodes[node]["point"])

    def _shortest_from(self, node: object) -> dict:
        return nx.single_source_dijkstra_path_length(self.graph, node, weight="length_km")

    def _leg(self, a: Point, b: Point) -> tuple[float, float]:
        node_a, access_a = self.snap(a)
        node_b, access_b = self.snap(b)
        lengths = self._tree(node_a)
        if node_b not in lengths:
            raise RouterError(f"{self.source}: no road path from node {node_a} to node {node_b}")
        km = lengths[node_b] + access_a + access_b
        return km, km / self.speed_kmh * 3600.0


def _weighted(graph: nx.Graph, source: str) -> nx.DiGraph:
    """A copy with ``point`` on every node and ``length_km`` on every edge."""
    out = nx.DiGraph()
    for node, data in graph.nodes(data=True):
        lat = data.get("lat", data.get("y"))
        lon = data.get("lon", data.get("x"))
        if lat is None or lon is None:
            raise RouterError(f"{source}: node {node} has no lat/lon (or y/x) attribute")
        out.add_node(node, point=Point(float(lat), float(lon)))
    directed = graph.is_directed()
    for u, v, data in graph.edges(data=True):
        if "length" in data:
            km = float(data["length"]) / 1000.0
        else:
            km = great_circle_km(out.nodes[u]["point"], out.nodes[v]["point"])
        for a, b in ((u, v),) if directed else ((u, v), (v, u)):
            if not out.has_edge(a, b) or out[a][b]["length_km"] > km:
                out.add_edge(a, b, length_km=km)
    return out


def read_osm_xml(path: Path) -> nx.DiGraph:
    """Road graph of an OSM XML export: every ``way`` with a ``highway`` tag, both directions
    unless tagged ``oneway=yes``."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise RouterError(f"{path}: not valid OSM XML ({error})") from None
    graph = nx.DiGraph()
    positions = {n.get("id"): _node_position(path, n) for n in root.iter("node")}
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if "highway" not in tags:
            continue
        refs = [nd.get("ref") for nd in way.iter("nd")]
        for ref in refs:
            if ref not in positions:
                raise RouterError(f"{path}: way {way.get('id')} refers to missing node {ref}")
            graph.add_node(ref, lat=positions[ref][0], lon=positions[ref][1])
        for u, v in zip(refs, refs[1:]):
            graph.add_edge(u, v)
            if tags.get("oneway") not in ("yes", "true", "1"):
                graph.add_edge(v, u)
    if graph.number_of_nodes() == 0:
        raise RouterError(f"{path}: no ways tagged 'highway' in the file")
    return graph


def _node_position(path: Path, node: ElementTree.Element) -> tuple[float, float]:
    lat, lon = node.get("lat"), node.get("lon")
    if lat is None or lon is None:
        raise RouterError(f"{path}: node {node.get('id')} has no lat/lon")
    return float(lat), float(lon)


def load_road_graph(path: str | Path) -> nx.Graph:
    path = Path(path)
    if not path.is_file():
        raise RouterError(f"{path}: no such road graph file")
    suffix = path.suffix.lower()
    if suffix == ".graphml":
        try:
            return nx.read_graphml(path)
        except (nx.NetworkXError, ElementTree.ParseError, ValueError, KeyError) as error:
            raise RouterError(f"{path}: not readable as GraphML ({error})") from None
    if suffix in (".osm", ".xml"):
        return read_osm_xml(path)
    raise RouterError(f"{path}: unknown road graph format (use .graphml, .osm or .xml)")


def make_router(speed_kmh: float, detour_factor: float, road_graph_file: str | Path | None) -> Router:
    """The straight-line router, or a graph router when a road graph file is given."""
    if road_graph_file is None:
        return StraightLineRouter(speed_kmh, detour_factor)
    graph = load_road_graph(road_graph_file)
    return GraphRouter(graph, speed_kmh, source=str(road_graph_file))
