"""The simulated city's streets as GeoJSON for the dashboard's map: SUMO's network read with
sumolib and placed over Berlin with the same transform the cars' positions use.

SUMO's own ``net2geojson`` needs a network with a geo projection, which a generated grid has
not; the API serves whatever file ``Settings.street_map_file()`` names (a real deployment
brings its own city's streets).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import sumolib

from fleetlink.sim.kinematic import to_lat_lon
from fleetlink.sim.sumo import generate_network


def street_features(net_file: Path) -> dict[str, Any]:
    """One LineString per street (SUMO's two directions of a street drawn once)."""
    net = sumolib.net.readNet(str(net_file))
    drawn: set[tuple[str, str]] = set()
    features = []
    for edge in net.getEdges():
        if edge.getFunction() == "internal":
            continue
        ends = tuple(sorted((edge.getFromNode().getID(), edge.getToNode().getID())))
        if ends in drawn:
            continue
        drawn.add((ends[0], ends[1]))
        line = []
        for x, y in edge.getShape():
            lat, lon = to_lat_lon(x, y)
            line.append([round(lon, 6), round(lat, 6)])
        features.append(
            {
                "type": "Feature",
                "properties": {"id": edge.getID(), "lanes": edge.getLaneNumber()},
                "geometry": {"type": "LineString", "coordinates": line},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_street_map(path: Path, seed: int = 0) -> int:
    """Generate the grid and write its streets to ``path``; the number of streets."""
    with tempfile.TemporaryDirectory(prefix="fleetlink-streets-") as workdir:
        collection = street_features(generate_network(Path(workdir), seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(collection, separators=(",", ":")))
    partial.replace(path)
    return len(collection["features"])
