"""Actors: the runtime (`actors.runtime`) and the concrete actors built on it."""
