"""Local simulators of the Biomesight and Gencove partner APIs, served over real HTTP.

The sandbox imports nothing of kitsync's product code: a simulator that shares the client's or the parser's
code could not catch their mistakes.
"""
