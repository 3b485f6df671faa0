"""The adversarial battery: ~150 hostile inputs across every command, each run as a real process.

    python -m tests.adversarial                 # every case, two at a time; a table of counts by outcome
    python -m tests.adversarial -k signal -j 1  # the cases whose name contains "signal"
    python -m tests.adversarial --root DIR      # the same battery against another checkout (a before/after)

Each case starts ``python -m engine.<command> ...`` in a scratch directory and sorts what happened
into one of: ``handled`` (the documented exit code, one ``error:`` line naming the flag, file or
row, no traceback, nothing saved changed), ``unclear`` (no traceback, but the wrong exit code or a
message that does not name what is wrong), ``traceback``, ``hang`` (past the case's time limit),
``silent-wrong`` (bad input accepted: it trained, or resumed the wrong checkpoint) and
``data-loss`` (a saved file changed or vanished, a signal lost more than the current step, metrics
missing). The battery is slow (a few minutes on two cores), so the default test suite runs only a
representative subset of the same cases (``tests/test_adversarial.py``).
"""
