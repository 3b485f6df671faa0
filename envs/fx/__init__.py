"""The FX market: data, synthetic markets, splits, features, execution, reward and the envs.

This package is the simulator. It imports nothing of the engine; the engine learns how to
build and evaluate FX envs from :mod:`envs.fx.family`, and the research side (backtests,
metrics, plots, reports) lives in :mod:`envs.fx.research`, which imports the engine.
"""

from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars, load_bars
from envs.fx.gym_api import ENV_ID, make_single_env, make_vector_env, register
from envs.fx.market import WHOLE, Market, fit_norm, load_market, make_fx_eval_env, make_fx_vector_env

register()

__all__ = ["ENV_ID", "WHOLE", "Bars", "FxEnvConfig", "Market", "fit_norm", "load_bars", "load_market",
           "make_fx_eval_env", "make_fx_vector_env", "make_single_env", "make_vector_env"]
