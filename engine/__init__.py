"""FxAI's engine: a Fabric manual loop (rollout -> GAE -> update) with a 16-event hook bus.

Core modules (import nothing from ``algos``, ``envs``, ``hooks`` or ``configs``; know no env):
``loop`` (the Run), ``launch``, ``config`` (RunConfig), ``registry`` (algorithms, policies and
env families by name), ``checkpoint``, ``events``, ``gae``, ``keys``, ``normalize``, ``vec``,
``distributions``, ``evaluate``, ``state``.

Command modules (``python -m engine.<name>``; the top layer, they may import every package):
``ppo``, ``a2c``, ``backtest``, ``tune``, ``bench``, and their shared ``cli``.
"""
