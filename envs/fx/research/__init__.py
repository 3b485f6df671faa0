"""The FX research side: backtests, baselines, metrics, plots and reports.

It drives the FX envs with trained policies and therefore imports the engine (checkpoints,
hook base class); the engine never imports it. :mod:`envs.fx.family` hands it to the engine.
"""
