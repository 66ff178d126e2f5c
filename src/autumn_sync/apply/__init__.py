"""Carrying out a plan: each change dispatched to its applier by kind and class."""
