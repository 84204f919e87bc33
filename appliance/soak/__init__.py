"""``nameplate soak``: a triggered line against a real appliance, with faults, and a count.

Never imported by the running services; the reliability tests run its short plan.
"""

from appliance.soak.harness import SoakPlan, SoakReport, run_soak

__all__ = ["SoakPlan", "SoakReport", "run_soak"]
