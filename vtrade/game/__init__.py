"""The game: missions as data, their state machines, progression (XP, levels, badges) and
leaderboards.

Pure domain code (DESIGN.md §2, §8): the game worker in ``vtrade.runtime`` turns ``exec``,
``portfolio``, ``user`` and class events into :mod:`vtrade.game.inputs`, folds them with
:func:`vtrade.game.machine.apply` and publishes the :mod:`vtrade.game.events` it returns;
:mod:`vtrade.game.leaderboard` ranks students with Redis Sorted Set semantics and
:mod:`vtrade.game.scoring` says on what. Nothing here reads the wall clock or does I/O.
"""
