"""Trace specs: the Trace model, selectors, durations and argument limits."""
