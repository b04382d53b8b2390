"""Default P10/P90 residual tables, used when no backtest on the site's own data is given.

PV: fitted by ``ems forecast backtest --kind pv --data pvlib:723170TYA.CSV --quantiles-out FILE``
(the city hall array of config/arao.toml) (Greensboro TMY3: real measured weather, a latitude
and climate close to Kyushu's). Residuals are relative to clear-sky output.

Load: an assumption of +-15 % of the P50, not a measurement. The England and Wales backtest
gives about -2.5 %/+2 %, but national demand is far smoother than one building's; replace this
with the table from a backtest on the site's meter data (``--quantiles-out``).
"""

from forecasting.quantiles import LEAD_BUCKETS_H, ResidualQuantiles

PV_QUANTILES = ResidualQuantiles(
    lead_h=LEAD_BUCKETS_H,
    q10=(-0.281, -0.348, -0.380, -0.392, -0.439, -0.454, -0.460, -0.460),
    q90=(0.336, 0.289, 0.262, 0.619, 0.423, 0.426, 0.432, 0.429),
)

LOAD_QUANTILES = ResidualQuantiles(
    lead_h=LEAD_BUCKETS_H,
    q10=(-0.15,) * len(LEAD_BUCKETS_H),
    q90=(0.15,) * len(LEAD_BUCKETS_H),
)
