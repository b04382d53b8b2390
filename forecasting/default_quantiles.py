"""Default P10/P90 residual tables, used when no backtest on the site's own data is given.

PV: fitted by ``ems forecast backtest --kind pv --data pvlib:723170TYA.CSV --config
config/arao.toml --quantiles-out FILE`` (Greensboro TMY3: real measured weather, a latitude
and climate close to Kyushu's). Residuals are relative to clear-sky output.

Load: an assumption of +-15 % of the P50, not a measurement. The England and Wales backtest
gives about -2.5 %/+2 %, but national demand is far smoother than one building's; replace this
with the table from a backtest on the site's meter data (``--quantiles-out``).
"""

from forecasting.quantiles import LEAD_BUCKETS_H, ResidualQuantiles

PV_QUANTILES = ResidualQuantiles(
    lead_h=LEAD_BUCKETS_H,
    q10=(-0.282, -0.344, -0.388, -0.399, -0.435, -0.447, -0.452, -0.454),
    q90=(0.341, 0.271, 0.258, 0.617, 0.406, 0.413, 0.415, 0.413),
)

LOAD_QUANTILES = ResidualQuantiles(
    lead_h=LEAD_BUCKETS_H,
    q10=(-0.15,) * len(LEAD_BUCKETS_H),
    q90=(0.15,) * len(LEAD_BUCKETS_H),
)
