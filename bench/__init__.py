"""Load bench for partner-gateway: scenarios, ceilings, peers, and their results side by side.

Run `python -m bench list`; see bench/README.md.
"""
