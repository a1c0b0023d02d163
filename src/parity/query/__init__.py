"""Reads: feature references in, values out, online and historical alike.

``refs`` parses what a caller names (the one parser), ``plan`` turns it into a
``FeaturePlan`` once per registry revision (the one planner and plan cache, on-demand views
planned with the rest), ``online`` and ``historical`` run a plan against the stores, and
``on_demand`` computes on-demand views the same way on both paths.
"""

from parity.query.plan import FeaturePlan, Planner, plan_features
from parity.query.refs import FeatureRefs, parse_refs

__all__ = ["FeaturePlan", "FeatureRefs", "Planner", "parse_refs", "plan_features"]
