"""The live control cycle: snapshot telemetry, re-plan, clamp, write set-points, record."""
