"""edgeagent.targets: device profiles (one data file each) and the memory/threads planner.

Profiles and the planner land with the build issue; this package exists so that the import name
is fixed from the start (DESIGN.md, Layout).
"""
