"""The Hub: one kernel probe, many trace jobs, exact kernel filters, routing."""
